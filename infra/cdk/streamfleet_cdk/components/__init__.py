"""One construct per component; grants between components are made by the stacks."""
