# AWS CDK app (issue 8): synthesize and lint the CloudFormation templates. Included by the Makefile.
# Synthesis runs in Python (no CLI needed); deploying uses the pinned CLI, see docs/deploy.md.
.PHONY: synth cdk-lint test-cdk

CDK_DIR := infra/cdk

synth: export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION = 20
synth: wheelhouse ## preview every template of the default config (secrets, control plane, 4 regions) in infra/cdk/cdk.out/; cdk-nag runs during synth
	rm -rf $(CDK_DIR)/cdk.out
	cd $(CDK_DIR) && CDK_CONTEXT_JSON='{"preview": "true"}' ../../$(PY) app.py
	@ls -1 $(CDK_DIR)/cdk.out/*.template.json

cdk-lint: synth ## cfn-lint every synthesized template (one invocation)
	$(dir $(PY))cfn-lint --config-file $(CDK_DIR)/.cfnlintrc.yaml $(CDK_DIR)/cdk.out/*.template.json

test-cdk: export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION = 20
test-cdk: setup ## CDK tests: config validation, template assertions, cdk-nag, cfn-lint, whole-app synth
	$(PY) -m pytest tests/unit/cdk tests/integration/cdk
