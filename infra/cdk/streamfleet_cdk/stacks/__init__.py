"""The three kinds of stack: secrets, control plane, region."""
