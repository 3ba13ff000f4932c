"""The GPU renderer image, baked by EC2 Image Builder in the region that uses it.

Recipe: Ubuntu 24.04 (Canonical's SSM parameter), then four components in
order: AWS's `update-linux`, the NVIDIA driver (Ubuntu's server branch with its
Vulkan ICD), the packaged Unreal app from an S3 artifact, and the streamfleet
agent installed offline from a wheelhouse asset whose lock file pins every
dependency by hash (`pip --require-hashes --no-index`). Each component has a
validate or test phase, so an image that cannot see its GPU or start the
agent is never distributed.

`AWS::ImageBuilder::Image` builds the image during the deploy, and the GPU
launch template takes its id: a new recipe version means a new image, a new
launch-template version, and `streamfleet upgrade` to roll it onto the fleet
without ending sessions. The pipeline shares the recipe for rebuilds
(on a schedule or on demand); its distribution also writes the newest id to
an SSM parameter.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_imagebuilder as imagebuilder
from constructs import Construct

from streamfleet_cdk.components.gpu_image_documents import (
    agent_document,
    content_hash,
    nvidia_document,
    unreal_document,
)
from streamfleet_cdk.components.network import Network, web_egress
from streamfleet_cdk.components.node_group import AGENT_LOCK, wheelhouse_bundle
from streamfleet_cdk.config import GpuImage, s3_parts
from streamfleet_cdk.nag import acknowledge


class GpuImageBuilder(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        name: str,
        image: GpuImage,
        network: Network,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.config = image
        # The same wheelhouse every node boots from (`make wheelhouse`); the agent role's lock.
        self.wheelhouse = wheelhouse_bundle(self)
        bucket, key = s3_parts(image.unreal_artifact)

        self.role = iam.Role(
            self,
            "BuildRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description=f"EC2 Image Builder build instances of the {name} GPU image",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore"),
                iam.ManagedPolicy.from_aws_managed_policy_name("EC2InstanceProfileForImageBuilder"),
            ],
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]",
            "Image Builder drives its build and test instances through Systems Manager; "
            "AWS maintains this policy with the agent's needs.",
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/EC2InstanceProfileForImageBuilder]",
            "The policy AWS documents for Image Builder instances: component documents, "
            "logs and reporting back to the service, maintained by AWS.",
        )
        # Exactly the two inputs: the Unreal artifact and this deployment's wheelhouse.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[
                    stack.format_arn(
                        service="s3", region="", account="", resource=bucket, resource_name=key
                    ),
                    self.wheelhouse.bucket.arn_for_objects(self.wheelhouse.s3_object_key),
                ],
            )
        )
        profile = iam.CfnInstanceProfile(self, "Profile", roles=[self.role.role_name])

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=network.vpc,
            description="GPU image build instances: package mirrors and AWS APIs out, nothing in",
            allow_all_outbound=False,
        )
        web_egress(self.security_group)
        subnet = network.vpc.select_subnets(
            subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS
        ).subnet_ids[0]

        def component(
            cid: str, cname: str, data: str, description: str, identity: str
        ) -> imagebuilder.CfnComponent:
            return imagebuilder.CfnComponent(
                self,
                cid,
                name=f"{name}-{cname}-{content_hash(image.version, identity)}",
                platform="Linux",
                version=image.version,
                data=data,
                description=description,
                supported_os_versions=["Ubuntu 24"],
            )

        nvidia_data = nvidia_document(image.nvidia_driver)
        nvidia = component("Nvidia", "nvidia-driver", nvidia_data, "NVIDIA driver", nvidia_data)
        unreal_data = unreal_document(image.unreal_artifact, image.unreal_dir)
        unreal = component("Unreal", "unreal-app", unreal_data, "the Unreal app", unreal_data)
        # The wheelhouse URL is a deploy-time token: its asset hash stands for it.
        agent = component(
            "Agent",
            "agent",
            agent_document(self.wheelhouse.s3_object_url, AGENT_LOCK),
            "the streamfleet agent",
            agent_document(self.wheelhouse.asset_hash, AGENT_LOCK),
        )
        update_linux = stack.format_arn(
            service="imagebuilder",
            account="aws",
            resource="component",
            resource_name="update-linux/x.x.x",
        )
        # Resolved by Image Builder at each build: a rebuild starts from the newest base.
        parent = f"ssm:{image.parent_ssm_parameter}"
        recipe_hash = content_hash(
            image.version, parent, str(image.volume_gib), nvidia.name, unreal.name, agent.name
        )
        self.recipe = imagebuilder.CfnImageRecipe(
            self,
            "Recipe",
            name=f"{name}-gpu-{recipe_hash}",
            version=image.version,
            description="streamfleet GPU renderer: NVIDIA driver, Unreal app, agent",
            parent_image=parent,
            components=[
                imagebuilder.CfnImageRecipe.ComponentConfigurationProperty(component_arn=arn)
                for arn in (update_linux, nvidia.attr_arn, unreal.attr_arn, agent.attr_arn)
            ],
            block_device_mappings=[
                imagebuilder.CfnImageRecipe.InstanceBlockDeviceMappingProperty(
                    device_name="/dev/sda1",
                    ebs=imagebuilder.CfnImageRecipe.EbsInstanceBlockDeviceSpecificationProperty(
                        volume_size=image.volume_gib,
                        volume_type="gp3",
                        encrypted=True,
                        delete_on_termination=True,
                    ),
                )
            ],
        )
        self.infrastructure = imagebuilder.CfnInfrastructureConfiguration(
            self,
            "Infrastructure",
            name=f"{name}-gpu-build",
            instance_profile_name=profile.ref,
            instance_types=[image.build_instance_type],
            subnet_id=subnet,
            security_group_ids=[self.security_group.security_group_id],
            terminate_instance_on_failure=True,
            instance_metadata_options=imagebuilder.CfnInfrastructureConfiguration.InstanceMetadataOptionsProperty(
                http_tokens="required", http_put_response_hop_limit=2
            ),
        )
        self.ssm_parameter = f"/{name}/gpu-image/latest"
        self.distribution = imagebuilder.CfnDistributionConfiguration(
            self,
            "Distribution",
            name=f"{name}-gpu",
            distributions=[
                imagebuilder.CfnDistributionConfiguration.DistributionProperty(
                    region=stack.region,
                    ami_distribution_configuration={
                        "Name": f"{name}-gpu-{image.version}-{{{{ imagebuilder:buildDate }}}}",
                        "AmiTags": {"streamfleet:image-version": image.version},
                    },
                    ssm_parameter_configurations=[
                        imagebuilder.CfnDistributionConfiguration.SsmParameterConfigurationProperty(
                            parameter_name=self.ssm_parameter, data_type="aws:ec2:image"
                        )
                    ],
                )
            ],
        )
        tests = imagebuilder.CfnImage.ImageTestsConfigurationProperty(
            image_tests_enabled=True, timeout_minutes=90
        )
        self.image = imagebuilder.CfnImage(
            self,
            "Image",
            image_recipe_arn=self.recipe.attr_arn,
            infrastructure_configuration_arn=self.infrastructure.attr_arn,
            distribution_configuration_arn=self.distribution.attr_arn,
            image_tests_configuration=tests,
            enhanced_image_metadata_enabled=True,
        )
        self.pipeline = imagebuilder.CfnImagePipeline(
            self,
            "Pipeline",
            name=f"{name}-gpu",
            description="rebuilds of the streamfleet GPU image (same recipe)",
            image_recipe_arn=self.recipe.attr_arn,
            infrastructure_configuration_arn=self.infrastructure.attr_arn,
            distribution_configuration_arn=self.distribution.attr_arn,
            image_tests_configuration=imagebuilder.CfnImagePipeline.ImageTestsConfigurationProperty(
                image_tests_enabled=True, timeout_minutes=90
            ),
            schedule=(
                imagebuilder.CfnImagePipeline.ScheduleProperty(
                    schedule_expression=image.schedule,
                    pipeline_execution_start_condition="EXPRESSION_MATCH_ONLY",
                )
                if image.schedule
                else None
            ),
            status="ENABLED",
        )

    @property
    def image_id(self) -> str:
        """The baked AMI (a deploy-time token)."""
        return self.image.attr_image_id
