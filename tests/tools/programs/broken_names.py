"""A program the preflight must refuse: names AWS would reject at `pulumi up` (run under the project's mocks)."""

import pulumi_aws as aws
import pulumi_kubernetes as k8s

provider = aws.Provider("aws-eu-west-1", region="eu-west-1")
# "<logical>-<7 hex>" is 35 characters: over the target group's 32.
aws.lb.TargetGroup("eu-west-1-edge-apigw-api-tg", target_type="ip", port=80, protocol="TCP", vpc_id="vpc-1", opts=None)
# Fits in eu-west-1 (50 characters) but not with the longest region name (55): Helm allows 53.
k8s.helm.v3.Release("eu-west-1-eks-aws-load-balancer-controller", chart="aws-load-balancer-controller")
