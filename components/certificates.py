"""ACM certificates validated through DNS records in a Route 53 public zone (shared by the edge layers).

ACM gives every domain name of an account one validation CNAME, whatever the certificate or region: the
regional ALB certificates, the API certificates and CloudFront's us-east-1 certificate all ask for
the same record when they share a name. So each validation record is written with `allow_overwrite`
(an UPSERT, idempotent) and kept on delete (`retain_on_delete`): removing one region must not delete a
record that another region's certificate still needs for its automatic renewal. A stale CNAME costs
nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws


def validated_certificate(
    name: str,
    *,
    domain: str,
    alternative_names: Sequence[str] = (),
    zone_id: pulumi.Input[str],
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> pulumi.Output[str]:
    """A DNS-validated certificate for `domain` (+ SANs); returns its ARN once ACM has issued it.

    The certificate is made in the region of `parent`'s provider. Whoever uses the returned ARN waits
    for the validation, so a listener or distribution never refers to a pending certificate.
    """
    names = [domain, *[n for n in alternative_names if n != domain]]
    if len(set(names)) != len(names):
        raise ValueError(f"validated_certificate({name!r}): alternative_names repeat a name: {names}.")
    cert = aws.acm.Certificate(
        f"{name}-cert",
        domain_name=domain,
        subject_alternative_names=names[1:] or None,
        validation_method="DNS",
        key_algorithm="RSA_2048",
        tags=dict(tags),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    fqdns = []
    for dns_name in names:
        # Pick this name's option by name, not by position: ACM does not promise an order.
        option = cert.domain_validation_options.apply(lambda opts, d=dns_name: _option_for(opts, d))
        record = aws.route53.Record(
            f"{name}-cert-validation-{_slug(dns_name)}",
            zone_id=zone_id,
            name=option.apply(lambda o: o["name"]),
            type=option.apply(lambda o: o["type"]),
            records=[option.apply(lambda o: o["value"])],
            ttl=300,
            allow_overwrite=True,
            opts=pulumi.ResourceOptions(parent=parent, retain_on_delete=True),
        )
        fqdns.append(record.fqdn)
    validation = aws.acm.CertificateValidation(
        f"{name}-cert-validation",
        certificate_arn=cert.arn,
        validation_record_fqdns=fqdns,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return validation.certificate_arn


def _option_for(options: Sequence[object], dns_name: str) -> dict[str, str]:
    for o in options or []:
        get = o.get if isinstance(o, dict) else lambda k, o=o: getattr(o, k, None)
        if (get("domain_name") or get("domainName")) == dns_name:
            return {
                "name": get("resource_record_name") or get("resourceRecordName"),
                "type": get("resource_record_type") or get("resourceRecordType"),
                "value": get("resource_record_value") or get("resourceRecordValue"),
            }
    raise ValueError(f"ACM returned no DNS validation option for {dns_name!r}.")


def _slug(dns_name: str) -> str:
    return dns_name.replace("*", "wildcard").replace(".", "-")
