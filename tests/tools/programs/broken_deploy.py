"""A program the preflight must refuse, run under the project's mocks: one value per kind of defect that
AWS, IAM or Kubernetes would reject at `pulumi up`, each on a resource of its own."""

import json

import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.limiter import lifecycle_policy

provider = aws.Provider("aws-eu-west-1", region="eu-west-1")
# "<logical>-<7 hex>" is 35 characters: over the target group's 32.
aws.lb.TargetGroup("eu-west-1-edge-apigw-api-tg", target_type="ip", port=80, protocol="TCP", vpc_id="vpc-1")
# Fits in eu-west-1 (50 characters) but not with the longest region name (55): Helm allows 53.
k8s.helm.v3.Release("eu-west-1-eks-aws-load-balancer-controller", chart="aws-load-balancer-controller")

# An IRSA trust policy keyed on the issuer URL with its scheme (pulumi-eks oidc_provider_url): IAM refuses it.
issuer = "oidc.eks.eu-west-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"
role = aws.iam.Role(
    "eu-west-1-broken-irsa-role",
    assume_role_policy=json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": f"arn:aws:iam::123456789012:oidc-provider/{issuer}"},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            f"https://{issuer}:sub": "system:serviceaccount:apps:orders",
                            f"https://{issuer}:aud": "sts.amazonaws.com",
                        }
                    },
                }
            ],
        }
    ),
)
k8s.core.v1.ServiceAccount(
    "eu-west-1-broken-sa",
    metadata={"name": "orders", "namespace": "apps", "annotations": {"eks.amazonaws.com/role-arn": role.arn}},
)
k8s.apps.v1.Deployment(
    "eu-west-1-broken-deployment",
    metadata={"name": "orders", "namespace": "apps"},
    spec={
        "selector": {"matchLabels": {"app": "orders"}},
        "template": {
            "metadata": {"labels": {"app": "orders"}},
            "spec": {"serviceAccountName": "orders", "containers": [{"name": "orders", "image": "orders:1"}]},
        },
    },
)
# An action IAM does not have (UpdateItems for UpdateItem).
aws.iam.RolePolicy(
    "eu-west-1-broken-policy",
    role=role.id,
    policy=json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["dynamodb:UpdateItems"], "Resource": "*"}],
        }
    ),
)
# An Istio field the CRD does not declare (notPath for notPaths): the API server would drop it silently.
k8s.apiextensions.CustomResource(
    "eu-west-1-broken-authz",
    api_version="security.istio.io/v1",
    kind="AuthorizationPolicy",
    metadata={"name": "ratelimit", "namespace": "istio-ingress"},
    spec={
        "action": "CUSTOM",
        "provider": {"name": "ratelimit-ext-authz"},
        "rules": [{"to": [{"operation": {"notPath": ["/healthz/ready"]}}]}],
    },
)
# Values the AWS APIs refuse: a retention period CloudWatch Logs does not offer, an integration timeout over
# API Gateway's 29 s, and an ECR lifecycle policy with two rules of one priority.
aws.cloudwatch.LogGroup("eu-west-1-broken-logs", retention_in_days=10)
aws.apigateway.Integration(
    "eu-west-1-broken-integration",
    rest_api="abc123",
    resource_id="def456",
    http_method="ANY",
    type="HTTP_PROXY",
    integration_http_method="ANY",
    uri="http://example.internal/",
    timeout_milliseconds=30_000,
)
# The limiter's own lifecycle policy with its second rule given the first one's priority.
broken_lifecycle = lifecycle_policy()
broken_lifecycle["rules"][1]["rulePriority"] = broken_lifecycle["rules"][0]["rulePriority"]
aws.ecr.LifecyclePolicy("eu-west-1-broken-lifecycle", repository="limiter", policy=json.dumps(broken_lifecycle))
