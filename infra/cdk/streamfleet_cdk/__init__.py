"""The streamfleet AWS CDK app: one secrets stack, one control-plane stack, one stack per region."""
