#!/usr/bin/env python3
"""Deploys the lake, control-plane and ETL stacks onto an AWS emulator (moto_server)
through its CloudFormation API, then writes the stack outputs and a `stackpro` config.

    python3 -m moto.server -H 127.0.0.1 -p 5055 &
    python3 infra/emulator.py --endpoint http://127.0.0.1:5055 --out /tmp/stackpro-emu
    STACKPRO_HASH_KEY=... stackpro --config /tmp/stackpro-emu/stackpro.toml setup

What moto's CloudFormation cannot do is handled so the emulator ends up shaped like a real
deployment:

* resource types it does not implement (AWS::Glue::Database, AWS::LakeFormation::Tag,
  AWS::S3::BucketPolicy, AWS::SQS::QueuePolicy, AWS::CloudWatch::Alarm) are skipped by it;
  the Glue database and the LF-tag keys are then created through their service APIs
  (the code needs them), the policies and alarms are not (moto enforces neither);
* properties it ignores (S3 versioning, lifecycle, public access block and notifications;
  DynamoDB TTL and point-in-time recovery) are applied through the service APIs with the
  values the templates declare;
* the Lambda function needs a code artifact, so the ETL stack is deployed with
  DeployFunction=false: the queues and the worker policy exist, the function does not.

Needs boto3 (`pip install boto3` if `python3 -c "import boto3"` fails) and PyYAML.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.exceptions import ClientError

HERE = Path(__file__).resolve().parent

# What the Rust code's create_table makes (catalog/src/aws/dynamodb.rs
# ensure_dynamodb_table: string hash and range keys), by config key.
EXPECTED_KEYS = {
    "catalog_table": [("pk", "HASH", "S"), ("sk", "RANGE", "S")],
    "consent_table": [("tenant", "HASH", "S"), ("dataset", "RANGE", "S")],
    "marketplace_table": [("pk", "HASH", "S"), ("sk", "RANGE", "S")],
}
MARKETPLACE_TTL_ATTRIBUTE = "expires_at_epoch"  # catalog/src/aws/market.rs
LF_TAG_KEYS = ["tenant", "dataset", "source"]  # catalog/src/aws/lake_formation.rs
LF_TAG_SEED_VALUE = "none"  # what `stackpro setup` seeds a new key with

# The templates' defaults, mirrored for the emulator's fill-ins (keep in step with
# lake.yaml's RawRetentionDays, CuratedRetentionDays and NoncurrentVersionDays).
RAW_DAYS, CURATED_DAYS, NONCURRENT_DAYS = 90, 731, 7

FLAGS = {
    "EtlEnabled": "true",
    "MarketplaceEnabled": "true",
    "DataSellerPortalEnabled": "false",
    "IotEnabled": "false",
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation YAML, short-form intrinsics (`!Ref`, `!Sub`, ...) included."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def template(name: str) -> tuple[str, dict[str, Any]]:
    text = (HERE / name).read_text()
    return text, yaml.load(text, Loader=_CfnLoader)  # noqa: S506 (a SafeLoader subclass)


class Emulator:
    def __init__(self, endpoint: str, region: str) -> None:
        self.session = boto3.session.Session(
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
            aws_session_token=os.environ.get("AWS_SESSION_TOKEN"),
            region_name=region,
        )
        self.endpoint = endpoint
        self.region = region

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint)


def deploy(
    emu: Emulator, stack: str, template_name: str, params: dict[str, str], timeout: float = 300
) -> dict[str, Any]:
    """Creates `stack`, or updates it if it exists; waits; returns its description."""
    cfn = emu.client("cloudformation")
    body, _ = template(template_name)
    parameters = [{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()]
    caps = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
    try:
        existing = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError:
        existing = None
    if existing is None or existing["StackStatus"] == "DELETE_COMPLETE":
        log(f"creating stack {stack} ({template_name})")
        cfn.create_stack(
            StackName=stack, TemplateBody=body, Parameters=parameters, Capabilities=caps
        )
    else:
        log(f"updating stack {stack} ({template_name})")
        try:
            cfn.update_stack(
                StackName=stack, TemplateBody=body, Parameters=parameters, Capabilities=caps
            )
        except ClientError as e:
            if "No updates" not in str(e):
                raise
    deadline = time.monotonic() + timeout
    while True:
        desc = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        status = desc["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"stack {stack} still {status} after {timeout} s")
        time.sleep(1)
    if status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        events = cfn.describe_stack_events(StackName=stack).get("StackEvents", [])
        reasons = [e["ResourceStatusReason"] for e in events if e.get("ResourceStatusReason")]
        raise SystemExit(f"stack {stack}: {status}; {reasons[:5]}")
    log(f"  {stack}: {desc['StackStatus']}")
    return desc


def outputs_of(desc: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in desc.get("Outputs", [])}


def resources_report(emu: Emulator, stack: str, template_name: str) -> dict[str, Any]:
    """Which declared resources the emulator created, and which it did not (and why)."""
    _, tpl = template(template_name)
    # moto lists the resources it skipped as entries without ids: leave those out.
    made = {
        r["LogicalResourceId"]: r["ResourceType"]
        for r in emu.client("cloudformation").describe_stack_resources(StackName=stack)[
            "StackResources"
        ]
        if r.get("LogicalResourceId")
    }
    absent = {}
    for logical, res in tpl["Resources"].items():
        if logical in made:
            continue
        cond = res.get("Condition")
        absent[logical] = (
            f"{res['Type']}: condition {cond} (false or unsupported)"
            if cond
            else f"{res['Type']}: not supported by moto's CloudFormation"
        )
    return {"created": made, "not_created": absent}


def bucket_of(url: str) -> str:
    return url.removeprefix("s3://").split("/", 1)[0]


def fill_in(emu: Emulator, lake: dict[str, str], cp: dict[str, str], etl: dict[str, str]) -> list[str]:
    """Applies what moto's CloudFormation skipped or ignored. Returns what it did."""
    done: list[str] = []
    s3 = emu.client("s3")
    raw, curated, quarantine = (
        lake["RawBucketName"],
        lake["CuratedBucketName"],
        lake["QuarantineBucketName"],
    )
    noncurrent_rule = {
        "ID": "noncurrent-versions",
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "NoncurrentVersionExpiration": {"NoncurrentDays": NONCURRENT_DAYS},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
    }
    lifecycle = {
        raw: [
            {"ID": "stackpro-retention", "Status": "Enabled", "Filter": {"Prefix": ""},
             "Expiration": {"Days": RAW_DAYS}},
            noncurrent_rule,
        ],
        quarantine: [
            {"ID": "stackpro-retention", "Status": "Enabled", "Filter": {"Prefix": ""},
             "Expiration": {"Days": RAW_DAYS}},
            noncurrent_rule,
        ],
        curated: [
            {"ID": "stackpro-retention", "Status": "Enabled", "Filter": {"Prefix": ""},
             "Expiration": {"Days": CURATED_DAYS},
             "NoncurrentVersionExpiration": {"NoncurrentDays": NONCURRENT_DAYS}},
            {"ID": "incomplete-uploads", "Status": "Enabled", "Filter": {"Prefix": ""},
             "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}},
        ],
    }
    for bucket in (raw, curated, quarantine):
        if s3.get_bucket_versioning(Bucket=bucket).get("Status") != "Enabled":
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
            done.append(f"s3 {bucket}: versioning enabled")
        try:
            have = s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
        except ClientError:
            have = []
        if sorted(r.get("ID", "") for r in have) != sorted(r["ID"] for r in lifecycle[bucket]):
            s3.put_bucket_lifecycle_configuration(
                Bucket=bucket, LifecycleConfiguration={"Rules": lifecycle[bucket]}
            )
            done.append(f"s3 {bucket}: lifecycle rules")
        block = {
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        }
        try:
            have_block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        except ClientError:
            have_block = {}
        if have_block != block:
            s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=block)
            done.append(f"s3 {bucket}: public access block")
    notif = s3.get_bucket_notification_configuration(Bucket=raw)
    if not notif.get("QueueConfigurations"):
        s3.put_bucket_notification_configuration(
            Bucket=raw,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {"QueueArn": etl["RawEventsQueueArn"], "Events": ["s3:ObjectCreated:*"]}
                ]
            },
        )
        done.append(f"s3 {raw}: ObjectCreated notifications to the raw-events queue")

    ddb = emu.client("dynamodb")
    market = cp["MarketplaceTableName"]
    ttl = ddb.describe_time_to_live(TableName=market)["TimeToLiveDescription"]
    if ttl.get("AttributeName") != MARKETPLACE_TTL_ATTRIBUTE or ttl.get("TimeToLiveStatus") != "ENABLED":
        ddb.update_time_to_live(
            TableName=market,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": MARKETPLACE_TTL_ATTRIBUTE},
        )
        done.append(f"dynamodb {market}: TTL on {MARKETPLACE_TTL_ATTRIBUTE}")
    for key in ("CatalogTableName", "ConsentTableName", "MarketplaceTableName"):
        try:
            pitr = ddb.describe_continuous_backups(TableName=cp[key])["ContinuousBackupsDescription"]
            if pitr.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus") == "ENABLED":
                continue
            ddb.update_continuous_backups(
                TableName=cp[key],
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )
            done.append(f"dynamodb {cp[key]}: point-in-time recovery")
        except ClientError as e:  # not every emulator version has it
            log(f"  (point-in-time recovery on {cp[key]} not applied: {e})")

    glue = emu.client("glue")
    db = lake["GlueDatabaseName"]
    try:
        glue.get_database(Name=db)
    except glue.exceptions.EntityNotFoundException:
        glue.create_database(
            DatabaseInput={
                "Name": db,
                "Description": "StackPro curated, k-anonymous datasets (one table per "
                "dataset, one per dataset and tenant)",
            }
        )
        done.append(f"glue database {db}")

    lf = emu.client("lakeformation")
    for key in LF_TAG_KEYS:
        try:
            values = lf.get_lf_tag(TagKey=key).get("TagValues") or []
        except ClientError:
            values = []
        if not values:
            lf.create_lf_tag(TagKey=key, TagValues=[LF_TAG_SEED_VALUE])
            done.append(f"lake formation tag {key}={LF_TAG_SEED_VALUE}")
    return done


def check_tables(emu: Emulator, cp: dict[str, str]) -> dict[str, Any]:
    """Compares each table's keys with what the Rust code's create_table would make."""
    ddb = emu.client("dynamodb")
    report: dict[str, Any] = {}
    names = {
        "catalog_table": cp["CatalogTableName"],
        "consent_table": cp["ConsentTableName"],
        "marketplace_table": cp["MarketplaceTableName"],
    }
    for config_key, table in names.items():
        t = ddb.describe_table(TableName=table)["Table"]
        types = {a["AttributeName"]: a["AttributeType"] for a in t["AttributeDefinitions"]}
        keys = [(k["AttributeName"], k["KeyType"], types.get(k["AttributeName"])) for k in t["KeySchema"]]
        billing = t.get("BillingModeSummary", {}).get("BillingMode")
        ok = keys == EXPECTED_KEYS[config_key]
        report[table] = {
            "config_key": config_key,
            "key_schema": keys,
            "expected": EXPECTED_KEYS[config_key],
            "billing_mode": billing,
            "matches_code": ok,
        }
        if not ok:
            raise SystemExit(
                f"table {table}: keys {keys}, the code expects {EXPECTED_KEYS[config_key]}"
            )
    return report


def toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def write_config(path: Path, endpoint: str, region: str, lake: dict[str, str], cp: dict[str, str]) -> None:
    # Keys of pipeline/src/config.rs `Config` and catalog/src/aws_settings.rs
    # `AwsSettings` (both deny unknown fields).
    lines = [
        "# Written by infra/emulator.py for the AWS emulator at " + endpoint,
        "# The hashing key is not here: set STACKPRO_HASH_KEY (at least 16 bytes).",
        'backend = "aws"',
        f"raw = {toml_str(lake['RawUrl'])}",
        f"curated = {toml_str(lake['CuratedUrl'])}",
        f"quarantine = {toml_str(lake['QuarantineUrl'])}",
        "",
        "[aws]",
        f"endpoint = {toml_str(endpoint)}",
        f"region = {toml_str(region)}",
        f"glue_database = {toml_str(lake['GlueDatabaseName'])}",
        f"catalog_table = {toml_str(cp['CatalogTableName'])}",
        f"consent_table = {toml_str(cp['ConsentTableName'])}",
        f"marketplace_table = {toml_str(cp['MarketplaceTableName'])}",
        f"kms_key_id = {toml_str(lake['LakeKeyArn'])}",
        "",
    ]
    path.write_text("\n".join(lines))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--endpoint", required=True, help="emulator URL, e.g. http://127.0.0.1:5055")
    ap.add_argument("--out", required=True, type=Path, help="folder for outputs.json and stackpro.toml")
    ap.add_argument(
        "--stack-prefix",
        default="stackpro",
        help="stacks are {prefix}-lake, -control-plane, -etl; buckets {prefix}-raw-...; "
        "with a prefix other than the default the tables and the Glue database are "
        "prefixed too ({prefix}-StackProReleases, {prefix}-catalog)",
    )
    ap.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    args = ap.parse_args()

    prefix = args.stack_prefix
    if prefix == "stackpro":
        names = {
            "GlueDatabaseName": "stackpro-catalog",
            "CatalogTableName": "StackProReleases",
            "ConsentTableName": "ConsentSettings",
            "MarketplaceTableName": "StackProMarketplace",
        }
    else:
        names = {
            "GlueDatabaseName": f"{prefix}-catalog",
            "CatalogTableName": f"{prefix}-StackProReleases",
            "ConsentTableName": f"{prefix}-ConsentSettings",
            "MarketplaceTableName": f"{prefix}-StackProMarketplace",
        }
    stacks = {k: f"{prefix}-{k}" for k in ("lake", "control-plane", "etl")}
    emu = Emulator(args.endpoint, args.region)

    lake_params = {
        "BucketNamePrefix": prefix,
        "GlueDatabaseName": names["GlueDatabaseName"],
        "ManageLfTags": "false",  # AWS::LakeFormation::Tag: created through the API below
        "RawEventsQueueArn": "",  # first deploy: the queue does not exist yet
        **FLAGS,
    }
    lake = deploy(emu, stacks["lake"], "lake.yaml", lake_params)
    cp = deploy(
        emu,
        stacks["control-plane"],
        "control-plane.yaml",
        {
            "LakeStackName": stacks["lake"],
            "CatalogTableName": names["CatalogTableName"],
            "ConsentTableName": names["ConsentTableName"],
            "MarketplaceTableName": names["MarketplaceTableName"],
            "DeletionProtection": "false",
            **FLAGS,
        },
    )
    etl = deploy(
        emu,
        stacks["etl"],
        "etl.yaml",
        {
            "LakeStackName": stacks["lake"],
            "ControlPlaneStackName": stacks["control-plane"],
            "DeployFunction": "false",  # no code artifact in the emulator
            "CodeS3Bucket": "no-artifact",
            **FLAGS,
        },
    )
    etl_out = outputs_of(etl)
    # Second lake deploy, as in the README: the raw bucket's notifications to the queue.
    lake = deploy(
        emu, stacks["lake"], "lake.yaml", {**lake_params, "RawEventsQueueArn": etl_out["RawEventsQueueArn"]}
    )
    lake_out, cp_out = outputs_of(lake), outputs_of(cp)

    fill_ins = fill_in(emu, lake_out, cp_out, etl_out)
    tables = check_tables(emu, cp_out)

    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "endpoint": args.endpoint,
        "region": args.region,
        "queue_url": etl_out["RawEventsQueueUrl"],
        "dead_letter_queue_url": etl_out["RawEventsDeadLetterQueueUrl"],
        "stacks": {
            stacks["lake"]: lake_out,
            stacks["control-plane"]: cp_out,
            stacks["etl"]: etl_out,
        },
        "resources": {
            stacks["lake"]: resources_report(emu, stacks["lake"], "lake.yaml"),
            stacks["control-plane"]: resources_report(emu, stacks["control-plane"], "control-plane.yaml"),
            stacks["etl"]: resources_report(emu, stacks["etl"], "etl.yaml"),
        },
        "emulator_fill_ins": fill_ins,
        "tables": tables,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (args.out / "outputs.json").write_text(json.dumps(result, indent=2) + "\n")
    write_config(args.out / "stackpro.toml", args.endpoint, args.region, lake_out, cp_out)
    print(f"queue_url: {etl_out['RawEventsQueueUrl']}")
    print(f"wrote {args.out / 'outputs.json'} and {args.out / 'stackpro.toml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
