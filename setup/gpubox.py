"""A cloud GPU box for the course on AWS EC2: launch, use, stop, tear down.

Run it from the kit's folder with a Python that has boto3, the kit's .venv (no bash needed)::

    .venv/bin/python setup/gpubox.py launch      # preflight, price, then a g4dn.xlarge
    .venv/bin/python setup/gpubox.py tunnel      # JupyterLab on http://localhost:8888
    .venv/bin/python setup/gpubox.py sync        # copy your runs, exercises and edited lessons here (never overwrites)
    .venv/bin/python setup/gpubox.py stop        # stop paying for the GPU
    .venv/bin/python setup/gpubox.py teardown    # delete everything (refuses while runs are not synced)

Every resource carries the tags `course-kit=cnn-course-kit` and
`course-kit:box=<box name>` and is looked up by them before anything is
created, so `launch` can be re-run after a failure, and `teardown` twice.
SSH is open to the learner's own IP only (a /32); JupyterLab listens on the
box's localhost and is reached through an SSH tunnel. The box's boot script is
`setup/bootstrap.sh`, sent as user data.

boto3 reads credentials and the region the usual way (~/.aws/credentials and
~/.aws/config, `AWS_PROFILE`, `AWS_DEFAULT_REGION`) and honours `AWS_ENDPOINT_URL`, which the
tests point at a local EC2 emulator.
"""

import argparse
import datetime
import gzip
import ipaddress
import json
import os
import pathlib
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

try:
    import boto3
    from botocore import exceptions as aws_errors
except ImportError:  # a Python without boto3: one line, not a traceback
    sys.exit("gpubox needs boto3, which this Python lacks: run it with the kit's .venv/bin/python (`make doctor` "
             "creates it), or give it a Python of its own: `python3 -m venv ~/gpubox && ~/gpubox/bin/pip install "
             "boto3`, then `~/gpubox/bin/python setup/gpubox.py …`.")

SETUP_DIR = pathlib.Path(__file__).resolve().parent
KIT_ROOT = SETUP_DIR.parent
KIT = "cnn-course-kit"
TAG_KIT = "course-kit"
TAG_BOX = "course-kit:box"
TAG_ROLE = "course-kit:role"
TAG_KEY_ORIGIN = "course-kit:key-origin"
TAG_IDLE = "course-kit:idle-minutes"
SSH_USER = "ubuntu"

# The newest AWS Deep Learning Base GPU AMI for Ubuntu 22.04 (NVIDIA driver and
# CUDA preinstalled), published by AWS as an SSM public parameter.
DEFAULT_AMI_PARAMETER = (
    "/aws/service/deeplearning/ami/x86_64/"
    "base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id")
AMI_NAME_PATTERN = "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *"

# Estimates: Linux on-demand list prices in us-east-1, USD per hour, looked up
# on PRICES_CHECKED (aws.amazon.com/ec2/pricing/on-demand). Prices differ by
# region; show_price says when these stand in for another region's. The GPU of
# each type in the comment. The disk and address prices below are us-east-1's too.
PRICES_CHECKED = "2026-11-23"
ON_DEMAND_USD_PER_HOUR = {
    "g4dn.xlarge": 0.526,   # 1x NVIDIA T4 16 GB, 4 vCPU, 16 GB RAM
    "g4dn.2xlarge": 0.752,  # 1x T4, 8 vCPU, 32 GB RAM
    "g6.xlarge": 0.8048,    # 1x NVIDIA L4 24 GB, 4 vCPU, 16 GB RAM
    "g5.xlarge": 1.006,     # 1x NVIDIA A10G 24 GB, 4 vCPU, 16 GB RAM
}
GP3_USD_PER_GB_MONTH = 0.08
PUBLIC_IPV4_USD_PER_HOUR = 0.005
HOURS_PER_MONTH = 730
# The vCPU quotas (Service Quotas codes, per region) of the GPU families the kit launches: (on-demand, spot),
# named "Running On-Demand G and VT instances", "All G and VT Spot Instance Requests", and the same for P.
QUOTAS = {"G and VT": ("L-DB2E81BA", "L-3819A6DF"), "P": ("L-417A185B", "L-7212CCBC")}
GPU_TYPE = re.compile(r"[gp][0-9][a-z0-9-]*\.[a-z0-9-]+")  # g4dn.xlarge, g6.xlarge, p3.2xlarge, p4d.24xlarge
NO_CAPACITY = ("InsufficientInstanceCapacity", "InsufficientCapacity", "InsufficientSpotCapacity",  # in one zone
               "UnfulfillableCapacity")
# Addresses that are never the learner's address as AWS sees it.
LOCAL_BLOCKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
                "127.0.0.0/8", "169.254.0.0/16", "0.0.0.0/8")
LIVE_STATES = ["pending", "running", "stopping", "stopped", "shutting-down"]
# A box's name goes into its key pair's and security group's names, its tags and
# its key file's name: ASCII letters, digits and hyphens, and never an option.
BOX_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,39}")
REGION_NAME = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")  # us-east-1, ap-southeast-2, us-gov-west-1


def quota_for(instance_type, spot):
    """(family, quota code) of the vCPU quota that `instance_type` (a G or P type) counts against."""
    family = "P" if (instance_type or "").startswith("p") else "G and VT"
    return family, QUOTAS[family][1 if spot else 0]


class GpuboxError(Exception):
    """A problem explained in one paragraph that ends with the next step."""


class NoBox(GpuboxError):
    """No box of that name in the region asked (main then looks in the account's other regions)."""


def quota_link(region, quota_code):
    return (f"https://{region}.console.aws.amazon.com/servicequotas/home/services/"
            f"ec2/quotas/{quota_code}")


def explain(error, context):
    """Turns an AWS error into one paragraph: what happened and what to do next.

    Args:
        error: a botocore `ClientError` or `NoCredentialsError`, or a `GpuboxError`.
        context: dict with `region`, `instance_type`, `vcpus`, `spot` where known.

    Returns:
        The explanation, a string.
    """
    if isinstance(error, GpuboxError):
        return str(error)
    region = context.get("region", "your region")
    instance_type = context.get("instance_type") or "the instance type"
    vcpus = context.get("vcpus") or 4
    if isinstance(error, (aws_errors.NoCredentialsError, aws_errors.PartialCredentialsError)):
        return ("No AWS credentials were found, so nothing was done. In the AWS console, create an access "
                "key for an IAM user, never for the root account (IAM > Users > your user > Security "
                "credentials), put it in ~/.aws/credentials with mode 600, not on a command line (setup/README.md "
                "shows the file), and run this command again.")
    if isinstance(error, aws_errors.BotoCoreError):
        return (f"Your AWS settings could not be used, so nothing was done ({error}). Check ~/.aws/config and "
                f"~/.aws/credentials (AWS_PROFILE must name a profile in them; after an IAM Identity Center (SSO) "
                f"login expires, run `aws sso login`), then run this command again.")
    if not isinstance(error, aws_errors.ClientError):
        return f"{type(error).__name__}: {error}"
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    operation = getattr(error, "operation_name", "the request")
    if code in ("VcpuLimitExceeded", "MaxSpotInstanceCountExceeded"):
        family, quota = quota_for(context.get("instance_type"), context.get("spot"))
        return (f"Your account may not run {vcpus} more vCPUs of {family} instances in {region} "
                f"(quota {quota}; new accounts often start at 0). Ask AWS to raise it to "
                f"at least {vcpus}: open {quota_link(region, quota)} and choose 'Request "
                f"increase', or run `aws service-quotas request-service-quota-increase "
                f"--service-code ec2 --quota-code {quota} --desired-value {vcpus} "
                f"--region {region}`. That page shows the request's status; once it is approved, run launch "
                f"again (it creates nothing twice).")
    # A persistent spot box that AWS stopped (an interruption) is started again by EC2 alone ("Only Amazon EC2 can
    # restart an interrupted stopped Spot Instance", AWS's page on interruption behavior). AWS's list of error codes
    # was not at hand to confirm the code StartInstances answers with; IncorrectSpotRequestState is the one public
    # reports and tools quote for it (also answered just after a stop, while AWS is still closing the spot request),
    # so the documented wording is matched too, whatever the code.
    if operation == "StartInstances" and (code == "IncorrectSpotRequestState"
                                          or "only amazon ec2 can restart" in message.lower()):
        return (f"AWS refused to start this spot box ({code}): AWS stopped it (a spot interruption), and only AWS "
                f"can start it again, which it does by itself once it has capacity for the type in the box's zone. "
                f"Wait, and check with `status`; once it is running, run sync. While it is stopped nothing on it can "
                f"be synced: `teardown --force` would delete it with every run, edited lesson and exercise not yet "
                f"synced. (If you stopped it yourself a moment ago, AWS may still be closing its spot request: run "
                f"start again in a minute.)")
    if code in NO_CAPACITY and operation == "StartInstances":
        return (f"AWS has no spare capacity of this box's type in its zone right now ({code}); this is on "
                f"AWS's side, not yours. A stopped box starts only in its own zone: wait a few minutes and run "
                f"start again, or, if its runs were synced, teardown and launch a new box (launch tries every zone).")
    if code in NO_CAPACITY + ("SpotMaxPriceTooLow",):
        spot_hint = " or drop --spot (on-demand capacity is steadier)" if context.get("spot") else ""
        tried = context.get("zones_tried") if code in NO_CAPACITY else None
        where = f", in any of the zones launch tried ({', '.join(tried)})" if tried else ""
        return (f"AWS has no spare {instance_type} capacity in {region} right now{where} "
                f"({code}); this is on AWS's side, not yours. Wait a few minutes and run "
                f"launch again, or try another type (--instance-type g6.xlarge or "
                f"g5.xlarge) or region (--region us-west-2){spot_hint}. Nothing was "
                f"duplicated: launch reuses what it already created.")
    if code in ("UnauthorizedOperation", "AccessDenied", "AccessDeniedException"):
        return (f"Your AWS user is not allowed to call {operation} ({code}). Use credentials "
                f"of a user with EC2 rights (the AmazonEC2FullAccess policy, and optionally "
                f"ssm:GetParameter and servicequotas:GetServiceQuota: setup/README.md), or ask your account's "
                f"administrator to grant them; then run the command again.")
    if code.startswith("InvalidAMIID"):
        return (f"The Deep Learning AMI is not available in {region} ({code}: {message}). "
                f"Try another region (--region us-east-1), or name another AMI parameter "
                f"with --ami-parameter; then run launch again.")
    if code in ("AuthFailure", "InvalidClientTokenId", "UnrecognizedClientException",
                "SignatureDoesNotMatch", "ExpiredToken"):
        return (f"AWS did not accept your credentials ({code}). In the AWS console (IAM > Users > your user > "
                f"Security credentials), check that the access key in ~/.aws/credentials is there and active; if "
                f"not, create a new one and put it in that file in place of the old (an expired IAM Identity "
                f"Center login: `aws sso login`). Then run this command again.")
    if code == "OptInRequired":
        return (f"Your account is not yet enabled for EC2 in {region} (a new account's "
                f"verification can take a few hours, and some regions must be enabled first "
                f"in Account settings). Try again later or use --region us-east-1.")
    return (f"AWS refused {operation}: {code}: {message}. Fix what it names and run the "
            f"same command again; the kit reuses whatever it already created.")


# ---------------------------------------------------------------- lookups


def tags_for(box, role, extra=None):
    tags = {"Name": f"{KIT}-{box}", TAG_KIT: KIT, TAG_BOX: box, TAG_ROLE: role}
    tags.update(extra or {})
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def tag_spec(resource_type, box, role, extra=None):
    return [{"ResourceType": resource_type, "Tags": tags_for(box, role, extra)}]


def box_filter(box, role=None):
    filters = [{"Name": f"tag:{TAG_KIT}", "Values": [KIT]},
               {"Name": f"tag:{TAG_BOX}", "Values": [box]}]
    if role:
        filters.append({"Name": f"tag:{TAG_ROLE}", "Values": [role]})
    return filters


def tag_value(resource, key):
    return next((tag["Value"] for tag in resource.get("Tags", []) if tag["Key"] == key), None)


def find_instances(ec2, box):
    """Returns the box's instances that are not terminated, newest first."""
    filters = box_filter(box, "instance") + [{"Name": "instance-state-name", "Values": LIVE_STATES}]
    reservations = ec2.describe_instances(Filters=filters)["Reservations"]
    instances = [i for r in reservations for i in r["Instances"]]
    return sorted(instances, key=lambda i: i["LaunchTime"], reverse=True)


def find_instance(ec2, box):
    instances = find_instances(ec2, box)
    if not instances:
        raise NoBox(f"There is no box named '{box}' in {ec2.meta.region_name}. Create one "
                          f"with `.venv/bin/python setup/gpubox.py launch --box {box}` (or pass the "
                          f"--region you launched it in).")
    return instances[0]


def regions_with_box(clients, box, checked):
    """{region: [instance ids]} of the account's other regions that hold instances tagged for `box`.

    A region that refuses (not enabled for the account, or unreachable) is passed over."""
    try:
        regions = sorted(r["RegionName"] for r in clients("ec2").describe_regions()["Regions"])
    except (aws_errors.ClientError, aws_errors.BotoCoreError):
        return {}
    found = {}
    for region in regions:
        if region == checked:
            continue
        try:
            instances = find_instances(clients("ec2", region), box)
        except (aws_errors.ClientError, aws_errors.BotoCoreError):
            continue
        if instances:
            found[region] = [instance["InstanceId"] for instance in instances]
    return found


def where_else(found):
    """`found` of regions_with_box, as words: 'us-west-2 (i-0abc)' and so on."""
    return ", ".join(f"{region} ({', '.join(ids)})" for region, ids in found.items())


def region_record_path(box):
    """Where launch records the box's region: next to the kit's key for the box, in ~/.ssh."""
    return pathlib.Path.home() / ".ssh" / f"{KIT}-{box}.region.json"


def recorded_region(box):
    """The region launch recorded for `box`, or None."""
    if not BOX_NAME.fullmatch(box):  # teardown takes any name; only launch's names have a record
        return None
    try:
        region = json.loads(region_record_path(box).read_text()).get("region")
    except (OSError, ValueError, AttributeError):
        return None
    return region if isinstance(region, str) and REGION_NAME.fullmatch(region) else None


def record_region(box, region):
    path = region_record_path(box)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text(json.dumps({"box": box, "region": region}) + "\n")


def price_per_hour(ec2, instance_type, spot):
    """Returns (USD per hour, description) for the instance, an estimate."""
    on_demand = ON_DEMAND_USD_PER_HOUR.get(instance_type)
    if spot:
        history = ec2.describe_spot_price_history(
            InstanceTypes=[instance_type], ProductDescriptions=["Linux/UNIX"],
            StartTime=datetime.datetime.now(datetime.timezone.utc), MaxResults=20)
        prices = [float(p["SpotPrice"]) for p in history.get("SpotPriceHistory", [])]
        if prices:
            return min(prices), f"spot, now, cheapest zone in {ec2.meta.region_name}"
    if on_demand is None:
        return None, "no price in the kit's table for this type"
    return on_demand, f"on-demand us-east-1 list price checked {PRICES_CHECKED}"


def cheapest_zones_first(ec2, instance_type, zones):
    """`zones` ordered by the spot price there now (the price `show_price` quotes is the first's)."""
    history = ec2.describe_spot_price_history(
        InstanceTypes=[instance_type], ProductDescriptions=["Linux/UNIX"],
        StartTime=datetime.datetime.now(datetime.timezone.utc), MaxResults=20).get("SpotPriceHistory", [])
    price = {}
    for entry in history:
        zone = entry.get("AvailabilityZone")
        price[zone] = min(price.get(zone, float("inf")), float(entry["SpotPrice"]))
    return sorted(zones, key=lambda zone: (price.get(zone, float("inf")), zone))


def show_price(ec2, instance_type, spot, disk_gb):
    """Prints the estimated cost per hour running and per month stopped."""
    hourly, source = price_per_hour(ec2, instance_type, spot)
    disk_month = disk_gb * GP3_USD_PER_GB_MONTH
    print(f"Estimated cost ({source}; an estimate, see your AWS bill for the truth):")
    if hourly is None:
        print(f"  {instance_type}: unknown here; check https://aws.amazon.com/ec2/pricing/")
    else:
        total = hourly + disk_month / HOURS_PER_MONTH + PUBLIC_IPV4_USD_PER_HOUR
        print(f"  running: ${total:.3f}/hour ({instance_type} ${hourly:.4f}, "
              f"{disk_gb} GB gp3 disk, public IPv4)")
    print(f"  stopped: ${disk_month:.2f}/month for the disk only; teardown: $0")
    region = ec2.meta.region_name
    if region != "us-east-1":
        print(f"  prices differ by region, and the list prices above are us-east-1's (checked {PRICES_CHECKED}): "
              f"see {region}'s on https://aws.amazon.com/ec2/pricing/on-demand/ (choose the region there; spot "
              f"prices: the EC2 console's Spot Requests > Pricing history)")
    return hourly


def instance_vcpus(ec2, instance_type):
    """The type's vCPUs, once AWS's description of it shows an NVIDIA GPU and x86_64 processors: the AMI is the
    x86_64 one with NVIDIA's driver, and TensorFlow's GPU build is CUDA's (g4ad has AMD GPUs, g5g ARM processors)."""
    (info,) = ec2.describe_instance_types(InstanceTypes=[instance_type])["InstanceTypes"]
    makers = sorted({gpu.get("Manufacturer") or "?" for gpu in info.get("GpuInfo", {}).get("Gpus", [])})
    if makers != ["NVIDIA"]:
        raise GpuboxError(f"{instance_type} has {'GPUs made by ' + ' and '.join(makers) if makers else 'no GPU'}, "
                          f"not an NVIDIA GPU, which the kit's AMI and TensorFlow need: use --instance-type "
                          f"g4dn.xlarge (the default), g6.xlarge or g5.xlarge; nothing was created.")
    architectures = info.get("ProcessorInfo", {}).get("SupportedArchitectures", [])
    if "x86_64" not in architectures:
        raise GpuboxError(f"{instance_type} has {' and '.join(architectures) or 'unknown'} processors, not x86_64, "
                          f"which the kit's AMI is built for: use --instance-type g4dn.xlarge (the default), "
                          f"g6.xlarge or g5.xlarge; nothing was created.")
    return info["VCpuInfo"]["DefaultVCpus"]


def regions_offering(clients, instance_type, checked):
    """The account's other regions where AWS sells `instance_type` (a region that refuses is passed over)."""
    try:
        regions = sorted(r["RegionName"] for r in clients("ec2").describe_regions()["Regions"])
    except (aws_errors.ClientError, aws_errors.BotoCoreError):
        return []
    found = []
    for region in regions:
        if region == checked:
            continue
        try:
            if clients("ec2", region).describe_instance_type_offerings(
                    LocationType="region", Filters=[{"Name": "instance-type", "Values": [instance_type]}]
            )["InstanceTypeOfferings"]:
                found.append(region)
        except (aws_errors.ClientError, aws_errors.BotoCoreError):
            continue
    return found


def check_offered(ec2, instance_type, clients=None):
    offers = ec2.describe_instance_type_offerings(
        LocationType="availability-zone",
        Filters=[{"Name": "instance-type", "Values": [instance_type]}])["InstanceTypeOfferings"]
    zones = sorted({offer["Location"] for offer in offers})
    if not zones:
        region = ec2.meta.region_name
        elsewhere = regions_offering(clients, instance_type, region) if clients else []
        if elsewhere:  # AWS's own answer, not a list kept in the kit
            raise GpuboxError(f"{instance_type} is not offered in {region}. AWS offers it in {', '.join(elsewhere)}: "
                              f"pick one with --region {elsewhere[0]} (say), or another --instance-type.")
        raise GpuboxError(f"{instance_type} is not offered in {region}, nor in any other region of your account "
                          f"that answered. Pick another --instance-type (g4dn.xlarge, the default, g6.xlarge or "
                          f"g5.xlarge).")
    return zones


def check_quota(quotas, region, quota_code, vcpus, family="G and VT"):
    """Checks the vCPU quota of the instance's family; returns it, or None when the account's own value cannot be
    read (then AWS's default for the quota, if it can be read, is shown as such: it may not be the account's)."""
    try:
        value = quotas.get_service_quota(ServiceCode="ec2", QuotaCode=quota_code)["Quota"]["Value"]
    except (aws_errors.ClientError, AttributeError) as error:
        why = error.response.get("Error", {}).get("Code", "") if isinstance(error, aws_errors.ClientError) else ""
        try:
            default = quotas.get_aws_default_service_quota(ServiceCode="ec2", QuotaCode=quota_code)["Quota"]["Value"]
        except (aws_errors.ClientError, AttributeError):
            default = None
        if default is None:
            print(f"WARN  could not read your vCPU quota {quota_code}; if launch then fails with "
                  f"VcpuLimitExceeded, request more at {quota_link(region, quota_code)}")
        else:
            print(f"WARN  could not read your account's vCPU quota {quota_code} ({why or 'no answer'}); AWS's default "
                  f"for it is {default:g}, not necessarily your account's (this box needs {vcpus}): see yours at "
                  f"{quota_link(region, quota_code)} ('Applied account-level quota value')")
        return None
    if value < vcpus:
        raise GpuboxError(
            f"Your account's quota {quota_code} allows {value:g} vCPUs of {family} instances in "
            f"{region}, and this box needs {vcpus}. New accounts often start at 0. Ask AWS "
            f"for at least {vcpus}: open {quota_link(region, quota_code)} and choose 'Request "
            f"increase', or run `aws service-quotas request-service-quota-increase "
            f"--service-code ec2 --quota-code {quota_code} --desired-value {vcpus} --region "
            f"{region}`. That page shows the request's status; nothing was created.")
    print(f"OK    vCPU quota {quota_code}: {value:g} (this box needs {vcpus})")
    return value


def find_ami(ssm, ec2, parameter):
    """Returns the newest Deep Learning Base GPU AMI id: SSM first, then describe-images."""
    try:
        return ssm.get_parameter(Name=parameter)["Parameter"]["Value"], f"SSM {parameter}"
    except aws_errors.ClientError as error:
        if error.response["Error"]["Code"] not in ("ParameterNotFound", "AccessDeniedException",
                                                    "ValidationException"):
            raise
    images = ec2.describe_images(
        Owners=["amazon"], Filters=[{"Name": "name", "Values": [AMI_NAME_PATTERN]},
                                    {"Name": "state", "Values": ["available"]},
                                    {"Name": "architecture", "Values": ["x86_64"]}])["Images"]
    if not images:
        raise GpuboxError(
            f"No AWS Deep Learning Base GPU AMI was found in {ec2.meta.region_name} (neither "
            f"the SSM parameter {parameter} nor an image named '{AMI_NAME_PATTERN}' owned by "
            f"amazon). Try --region us-east-1, or give another parameter with --ami-parameter.")
    newest = max(images, key=lambda image: image["CreationDate"])
    return newest["ImageId"], f"newest image named {newest['Name']}"


def my_public_ip(value):
    """Returns the learner's IPv4 address as A.B.C.D, looking it up for 'auto'."""
    if value == "auto":
        try:
            with urllib.request.urlopen("https://checkip.amazonaws.com", timeout=10) as response:
                value = response.read().decode().strip()
        except OSError as error:
            raise GpuboxError(f"Could not look up your public IP ({error}). Pass it yourself "
                              f"with --my-ip A.B.C.D (search 'what is my IP').") from error
    return public_ipv4(value)


def public_ipv4(value):
    """`value` as A.B.C.D if it is a public IPv4 address; raises GpuboxError otherwise."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise GpuboxError(f"--my-ip {value!r} is not an IP address: give your public IPv4 "
                          f"address as A.B.C.D, or 'auto'.") from None
    if (address.version != 4 or address.is_multicast or address.is_reserved  # 224/4, 240/4, broadcast
            or any(address in ipaddress.ip_network(block) for block in LOCAL_BLOCKS)):
        raise GpuboxError(f"--my-ip {value} is not a public IPv4 address; SSH is opened to "
                          f"your public IPv4 only. Give it as A.B.C.D, or 'auto'.")
    return str(address)


# ---------------------------------------------------------------- creation


def ensure_network(ec2, box, zones):
    """Returns (vpc_id, subnets): the default VPC's subnets, or a small tagged VPC with a subnet in each
    zone; `subnets` is a list of (zone, subnet_id) in the order of `zones`, where launch tries them."""
    default = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    if default:
        vpc_id = default[0]["VpcId"]
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                {"Name": "default-for-az", "Values": ["true"]}])
        usable = {s["AvailabilityZone"]: s["SubnetId"] for s in subnets["Subnets"] if s["AvailabilityZone"] in zones}
        if usable and len(usable) < len(zones):  # launch tries only zones with a subnet, the cheapest first
            missing = [zone for zone in zones if zone not in usable]
            print(f"note  the default VPC has no subnet in {', '.join(missing)}, so the box cannot go there "
                  f"(the VPC console's Subnets > Actions > Create default subnet adds one, or `aws ec2 "
                  f"create-default-subnet --availability-zone {missing[0]}`)")
        if not usable:
            raise GpuboxError(f"The default VPC has no subnet in a zone that offers this type "
                              f"({', '.join(zones)}). Create a default subnet there (VPC console > Subnets > "
                              f"Actions > Create default subnet, zone {zones[0]}; or `aws ec2 create-default-subnet "
                              f"--availability-zone {zones[0]}`), then run launch again.")
        return vpc_id, [(zone, usable[zone]) for zone in zones if zone in usable]
    vpcs = ec2.describe_vpcs(Filters=box_filter(box, "vpc"))["Vpcs"]
    if vpcs:
        vpc_id = vpcs[0]["VpcId"]
    else:
        vpc_id = ec2.create_vpc(CidrBlock="10.77.0.0/16",
                                TagSpecifications=tag_spec("vpc", box, "vpc"))["Vpc"]["VpcId"]
        print(f"created VPC {vpc_id}")
    # Each piece is checked every time, not only when it is created: a launch interrupted between two
    # calls must not leave a box with no public address or no route to the internet.
    subnets = {s["AvailabilityZone"]: s for s in ec2.describe_subnets(Filters=box_filter(box, "subnet"))["Subnets"]}
    used = {s["CidrBlock"] for s in subnets.values()}
    free = (f"10.77.{n}.0/24" for n in range(256) if f"10.77.{n}.0/24" not in used)
    for zone in zones:
        if zone not in subnets:
            subnets[zone] = ec2.create_subnet(VpcId=vpc_id, CidrBlock=next(free), AvailabilityZone=zone,
                                              TagSpecifications=tag_spec("subnet", box, "subnet"))["Subnet"]
        if not subnets[zone].get("MapPublicIpOnLaunch"):
            ec2.modify_subnet_attribute(SubnetId=subnets[zone]["SubnetId"], MapPublicIpOnLaunch={"Value": True})
    gateways = ec2.describe_internet_gateways(Filters=box_filter(box, "gateway"))["InternetGateways"]
    if gateways:
        gateway_id = gateways[0]["InternetGatewayId"]
    else:
        gateway_id = ec2.create_internet_gateway(TagSpecifications=tag_spec(
            "internet-gateway", box, "gateway"))["InternetGateway"]["InternetGatewayId"]
    gateway = ec2.describe_internet_gateways(InternetGatewayIds=[gateway_id])["InternetGateways"][0]
    if not any(a["VpcId"] == vpc_id for a in gateway.get("Attachments", [])):
        ec2.attach_internet_gateway(InternetGatewayId=gateway_id, VpcId=vpc_id)
    tables = ec2.describe_route_tables(Filters=box_filter(box, "routes"))["RouteTables"]
    table = tables[0] if tables else ec2.create_route_table(VpcId=vpc_id, TagSpecifications=tag_spec(
        "route-table", box, "routes"))["RouteTable"]
    default_routes = [r for r in table.get("Routes", []) if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
    if not default_routes:
        ec2.create_route(RouteTableId=table["RouteTableId"], DestinationCidrBlock="0.0.0.0/0",
                         GatewayId=gateway_id)
    elif default_routes[0].get("GatewayId") != gateway_id:  # through a gateway that is gone
        ec2.replace_route(RouteTableId=table["RouteTableId"], DestinationCidrBlock="0.0.0.0/0",
                          GatewayId=gateway_id)
    associated = {a.get("SubnetId") for a in table.get("Associations", [])}
    for zone in zones:
        if subnets[zone]["SubnetId"] not in associated:
            ec2.associate_route_table(RouteTableId=table["RouteTableId"], SubnetId=subnets[zone]["SubnetId"])
    return vpc_id, [(zone, subnets[zone]["SubnetId"]) for zone in zones]


def run_in_some_zone(ec2, request, subnets, context):
    """Runs the instance in the first of `subnets` (zone, subnet_id) with capacity for it: AWS's
    capacity differs from zone to zone, so a zone that has none is not the end of a launch."""
    context["zones_tried"] = []
    for number, (zone, subnet_id) in enumerate(subnets, 1):
        context["zones_tried"].append(zone)
        try:
            return ec2.run_instances(**request, SubnetId=subnet_id)["Instances"][0]
        except aws_errors.ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code not in NO_CAPACITY or number == len(subnets):
                raise
            print(f"no spare {request['InstanceType']} capacity in {zone} now ({code}); "
                  f"trying {subnets[number][0]}")


def ssh_rule(ip):
    return {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
            "IpRanges": [{"CidrIp": f"{ip}/32", "Description": "SSH from the learner"}]}


# Outbound: HTTPS (pip, NVIDIA, Kaggle, git) and HTTP (Ubuntu's apt mirrors)
# only. DNS, NTP and instance metadata are link-local and not filtered.
EGRESS_RULES = [{"IpProtocol": "tcp", "FromPort": port, "ToPort": port,
                 "IpRanges": [{"CidrIp": "0.0.0.0/0"}]} for port in (443, 80)]


def ensure_security_group(ec2, box, vpc_id, ip):
    """Returns the box's security group id; its only inbound rule is SSH from ip/32."""
    groups = ec2.describe_security_groups(Filters=box_filter(box, "firewall"))["SecurityGroups"]
    if groups:
        group = groups[0]
        egress = sorted((p.get("IpProtocol"), p.get("FromPort"), p.get("ToPort"),
                         tuple(r["CidrIp"] for r in p.get("IpRanges", []))) for p in group["IpPermissionsEgress"])
        wanted_egress = sorted((p["IpProtocol"], p["FromPort"], p["ToPort"], ("0.0.0.0/0",)) for p in EGRESS_RULES)
        if egress != wanted_egress:  # a launch interrupted between creating the group and restricting it
            if group["IpPermissionsEgress"]:
                ec2.revoke_security_group_egress(GroupId=group["GroupId"], IpPermissions=group["IpPermissionsEgress"])
            ec2.authorize_security_group_egress(GroupId=group["GroupId"], IpPermissions=EGRESS_RULES)
            print(f"outbound traffic of {group['GroupId']} restricted to HTTPS and HTTP again")
    else:
        group_id = ec2.create_security_group(
            GroupName=f"{KIT}-{box}", VpcId=vpc_id,
            Description="cnn-course-kit GPU box: SSH from the learner's IP only",
            TagSpecifications=tag_spec("security-group", box, "firewall"))["GroupId"]
        group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
        ec2.revoke_security_group_egress(GroupId=group_id, IpPermissions=group["IpPermissionsEgress"])
        ec2.authorize_security_group_egress(GroupId=group_id, IpPermissions=EGRESS_RULES)
        group["IpPermissions"] = []
        print(f"created security group {group_id}")
    wanted = f"{ip}/32"
    stale = [p for p in group["IpPermissions"]
             if [r["CidrIp"] for r in p.get("IpRanges", [])] != [wanted]
             or (p.get("FromPort"), p.get("ToPort"), p.get("IpProtocol")) != (22, 22, "tcp")
             or p.get("Ipv6Ranges") or p.get("UserIdGroupPairs") or p.get("PrefixListIds")]
    if stale:
        ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=stale)
    if len(stale) == len(group["IpPermissions"]):
        ec2.authorize_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[ssh_rule(ip)])
        print(f"SSH (tcp/22) allowed from {wanted} only")
    return group["GroupId"]


def private_key_path(box, origin):
    """The private key that opens the box: the learner's own, or the one the kit made."""
    if origin and origin.startswith("imported:"):
        return pathlib.Path.home() / ".ssh" / origin.split(":", 1)[1]
    return pathlib.Path.home() / ".ssh" / f"{KIT}-{box}.pem"


def ensure_key_pair(ec2, box):
    """Returns the key pair's name; imports ~/.ssh/id_*.pub or creates a key (0600).

    Called only while the box has no instance. A key pair whose private key is
    not on this machine is deleted and made again: a box nobody can SSH into
    is never started.
    """
    name = f"{KIT}-{box}"
    pairs = ec2.describe_key_pairs(Filters=box_filter(box, "key"))["KeyPairs"]
    if pairs:
        origin = tag_value(pairs[0], TAG_KEY_ORIGIN)
        if private_key_path(box, origin).exists():
            return pairs[0]["KeyName"]
        # launch calls this only when the box has no instance, so nothing can depend on this pair:
        # a box started with it could never be reached. Replace it.
        ec2.delete_key_pair(KeyName=pairs[0]["KeyName"])
        print(f"the key pair {pairs[0]['KeyName']} had no private key here ({private_key_path(box, origin)}, "
              "an interrupted launch?): replaced with a new one")
    ssh_dir = pathlib.Path.home() / ".ssh"
    for stem in ("id_ed25519", "id_rsa"):
        public = ssh_dir / f"{stem}.pub"
        if public.is_file() and (ssh_dir / stem).is_file():
            ec2.import_key_pair(KeyName=name, PublicKeyMaterial=public.read_bytes(),
                                TagSpecifications=tag_spec("key-pair", box, "key", {
                                    TAG_KEY_ORIGIN: f"imported:{stem}"}))
            print(f"imported your public key {public} as key pair {name}")
            return name
    key_file = private_key_path(box, "created")
    if key_file.exists():
        raise GpuboxError(f"{key_file} already exists but AWS has no key pair {name}. Move the "
                          f"file aside (it opens no box the kit knows of) and run launch again.")
    material = ec2.create_key_pair(KeyName=name, KeyType="ed25519", KeyFormat="pem",
                                   TagSpecifications=tag_spec("key-pair", box, "key", {
                                       TAG_KEY_ORIGIN: "created"}))["KeyMaterial"]
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(material)
    os.chmod(key_file, 0o600)
    print(f"created key pair {name}; private key saved to {key_file} (mode 0600)")
    return name


def user_data(repo, idle_minutes):
    """The boot script: setup/bootstrap.sh with the box's settings filled in."""
    script = (SETUP_DIR / "bootstrap.sh").read_text()
    shebang, body = script.split("\n", 1)
    settings = (f"export COURSE_REPO={shlex.quote(repo)}\nexport IDLE_MINUTES={int(idle_minutes)}\n"
                f"export COURSE_USER={SSH_USER}\n")
    return f"{shebang}\n{settings}{body}"


USER_DATA_LIMIT = 16 * 1024  # EC2 refuses user data over 16 KB, counted before botocore's base64


def packed_user_data(script):
    """`script` gzipped, as run_instances sends it: EC2's limit is far off (the script alone is near it), and
    cloud-init unpacks gzipped user data by itself (then keeps the script as /var/lib/cloud/instance/scripts/
    part-001). boto3 takes the bytes as they are and base64-encodes them."""
    packed = gzip.compress(script.encode(), mtime=0)
    if len(packed) > USER_DATA_LIMIT:  # a bootstrap.sh grown beyond what EC2 takes: the kit's bug, not the learner's
        raise GpuboxError(f"The box's boot script is {len(packed)} bytes gzipped, over EC2's {USER_DATA_LIMIT}; "
                          f"nothing was created. Please report this bug in the kit.")
    return packed


def course_repo(value):
    """The URL the box clones the kit from: --repo, else this clone's origin."""
    if value:
        return without_credentials(value, "--repo")
    try:
        url = subprocess.run(["git", "-C", str(KIT_ROOT), "remote", "get-url", "origin"],
                             capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        url = ""
    if url.startswith("git@") and ":" in url:
        host, path = url[4:].split(":", 1)
        url = f"https://{host}/{path}"
    if not url.startswith("https://"):
        raise GpuboxError("The box clones the kit from a URL it can reach, and this clone has "
                          "no https origin. Pass --repo https://github.com/YOU/YOUR-FORK.git "
                          "(a public copy of the kit) and run launch again.")
    return without_credentials(url, "this clone's origin")


def without_credentials(url, where):
    """`url`, refused when it carries a user name or token: the box's user data is not secret."""
    parts = urllib.parse.urlsplit(url)
    if parts.username or parts.password:
        raise GpuboxError(f"{where} holds a user name or token (https://USER:TOKEN@...). The box's "
                          "user data is readable on the box and in the AWS console: pass --repo with "
                          "the repository's public https address instead.")
    return url


# ---------------------------------------------------------------- commands


def wait_for_ssh(host, timeout):
    """Waits until tcp/22 on host accepts connections; returns True if it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, 22), timeout=5):
                return True
        except OSError:
            time.sleep(5)
    return False


def confirm(args, question):
    """Asks before creating or deleting; without a terminal only --yes agrees."""
    if args.yes:
        return True
    if not sys.stdin.isatty():
        print(f"{question} Not confirmed: add --yes to run this without a terminal.")
        return False
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:  # Ctrl-D: no answer, so no
        print()
        return False


def print_next_steps(box, region):
    flags = f" --box {box} --region {region}"
    print("Next:")
    print(f"  .venv/bin/python setup/gpubox.py tunnel{flags}   # JupyterLab on http://localhost:8888")
    print(f"  .venv/bin/python setup/gpubox.py ssh{flags}      # a shell on the box")
    print(f"  .venv/bin/python setup/gpubox.py sync{flags}     # copy your work on the box here, before teardown")
    print(f"  .venv/bin/python setup/gpubox.py stop{flags}     # stop paying for the GPU")
    print(f"  .venv/bin/python setup/gpubox.py teardown{flags} # delete everything the kit created")


def launch(clients, args, context):
    ec2 = clients("ec2")
    account = clients("sts").get_caller_identity()["Account"]  # fails early without credentials
    print(f"OK    credentials for AWS account {account}, region {context['region']}")
    existing = find_instances(ec2, args.box)
    if existing:
        instance = existing[0]
        record_region(args.box, context["region"])
        ensure_security_group(ec2, args.box, instance["VpcId"], my_public_ip(args.my_ip))
        print(f"Box '{args.box}' already exists ({instance['InstanceId']}, "
              f"{instance['State']['Name']}); nothing new was created.")
        if instance["State"]["Name"] == "stopped":
            print(f"Start it with: .venv/bin/python setup/gpubox.py start --box {args.box}")
        return 0
    zones = check_offered(ec2, args.instance_type, clients)
    print(f"OK    {args.instance_type} is offered in {', '.join(zones)}")
    if args.spot:  # the box goes where spot is cheapest now: the zone whose price is quoted below
        zones = cheapest_zones_first(ec2, args.instance_type, zones)
    context["vcpus"] = instance_vcpus(ec2, args.instance_type)
    family, quota_code = quota_for(args.instance_type, args.spot)
    check_quota(clients("service-quotas"), context["region"], quota_code, context["vcpus"], family)
    ami_id, ami_source = find_ami(clients("ssm"), ec2, args.ami_parameter)
    image = ec2.describe_images(ImageIds=[ami_id])["Images"][0]
    print(f"OK    AMI {ami_id} ({ami_source})")
    image_gb = max([m.get("Ebs", {}).get("VolumeSize", 0) for m in image.get("BlockDeviceMappings", [])
                    if m.get("DeviceName") == image["RootDeviceName"]] or [0])
    if args.disk_gb < image_gb:
        raise GpuboxError(f"--disk-gb {args.disk_gb} is smaller than the AMI's own disk "
                          f"({image_gb} GB). Use --disk-gb {max(image_gb + 25, 100)} (room for "
                          f"the datasets) and run launch again.")
    ip = my_public_ip(args.my_ip)
    boot_script = packed_user_data(user_data(course_repo(args.repo), args.idle_minutes))
    show_price(ec2, args.instance_type, args.spot, args.disk_gb)
    if not confirm(args, f"Launch {args.instance_type} in {context['region']}?"):
        print("Nothing was created.")
        return 1
    record_region(args.box, context["region"])  # the box's later commands look here when --region is not given
    vpc_id, subnets = ensure_network(ec2, args.box, zones)
    group_id = ensure_security_group(ec2, args.box, vpc_id, ip)
    key_name = ensure_key_pair(ec2, args.box)
    request = dict(
        ImageId=ami_id, InstanceType=args.instance_type, MinCount=1, MaxCount=1,
        KeyName=key_name, SecurityGroupIds=[group_id],
        UserData=boot_script,
        InstanceInitiatedShutdownBehavior="stop",
        MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled",
                         "HttpPutResponseHopLimit": 1},
        BlockDeviceMappings=[{"DeviceName": image["RootDeviceName"], "Ebs": {
            "VolumeSize": args.disk_gb, "VolumeType": "gp3", "DeleteOnTermination": True,
            "Encrypted": True}}],
        TagSpecifications=(tag_spec("instance", args.box, "instance",
                                    {TAG_IDLE: str(args.idle_minutes)})
                           + tag_spec("volume", args.box, "disk")))
    if args.spot:
        request["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": {
            "SpotInstanceType": "persistent", "InstanceInterruptionBehavior": "stop"}}
    instance = run_in_some_zone(ec2, request, subnets, context)
    print(f"launched {instance['InstanceId']} ({args.instance_type}); the box installs the course by itself after "
          f"it boots: about 10 minutes, an estimate (not measured) for what it installs, TensorFlow with NVIDIA's "
          f"CUDA libraries the largest part")
    if not args.no_wait:
        ec2.get_waiter("instance_running").wait(InstanceIds=[instance["InstanceId"]])
        instance = find_instance(ec2, args.box)
        host = instance.get("PublicIpAddress")
        if host and wait_for_ssh(host, args.ssh_timeout):
            print(f"SSH is up at {host}")
        else:
            print(f"SSH is not reachable yet after {args.ssh_timeout} s; try `status` in a minute.")
    print_next_steps(args.box, context["region"])
    return 0


def status(clients, args, context):
    ec2 = clients("ec2")
    instance = find_instance(ec2, args.box)
    state = instance["State"]["Name"]
    instance_type = instance["InstanceType"]
    spot = instance.get("InstanceLifecycle") == "spot"
    print(f"box        {args.box} ({instance['InstanceId']}, {context['region']})")
    print(f"state      {state}")
    print(f"type       {instance_type}{' (spot)' if spot else ''}")
    print(f"address    {instance.get('PublicIpAddress', '-')}")
    print(f"idle stop  after {tag_value(instance, TAG_IDLE) or '?'} idle minutes, as launched "
          f"(the box's /etc/default/course-idle-stop has the last word)")
    if state == "running":
        hours = (datetime.datetime.now(datetime.timezone.utc)
                 - instance["LaunchTime"]).total_seconds() / 3600
        hourly, source = price_per_hour(ec2, instance_type, spot)
        print(f"uptime     {hours:.2f} h since it last started")
        if hourly is not None:
            print(f"cost       ~${hours * hourly:.2f} so far since it started "
                  f"(${hourly:.4f}/h, {source}; an estimate)")
    volumes = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id",
                                             "Values": [instance["InstanceId"]]}])["Volumes"]
    disk_gb = sum(volume["Size"] for volume in volumes)
    print(f"disk       {disk_gb} GB gp3, ~${disk_gb * GP3_USD_PER_GB_MONTH:.2f}/month "
          f"even when stopped")
    record = read_sync_record(args.box, instance["InstanceId"])
    print(f"synced     {record['synced'] + ' (.venv/bin/python setup/gpubox.py sync)' if record else 'never'}")
    return 0


def ssh_command(ec2, box, extra):
    instance = find_instance(ec2, box)
    host = instance.get("PublicIpAddress")
    if instance["State"]["Name"] != "running" or not host:
        raise GpuboxError(f"Box '{box}' is {instance['State']['Name']}, not running. Start it "
                          f"with `.venv/bin/python setup/gpubox.py start --box {box}`.")
    pairs = ec2.describe_key_pairs(Filters=box_filter(box, "key"))["KeyPairs"]
    key = private_key_path(box, tag_value(pairs[0], TAG_KEY_ORIGIN) if pairs else None)
    program = tool("GPUBOX_SSH", "ssh")
    if shutil.which(program[0]) is None:
        raise GpuboxError("No `ssh` command was found. Install OpenSSH (Ubuntu, Debian and WSL on Windows: "
                          "`sudo apt install openssh-client`; macOS has it) and try again.")
    # The box's host key is kept under its instance id, in a file of the box's own: AWS gives a new box an
    # address an old one had, and a key stored under the address would then fail "Host key verification".
    return [*program, "-i", str(key), "-o", f"HostKeyAlias={instance['InstanceId']}",
            "-o", f"UserKnownHostsFile={known_hosts_path(box)}", "-o", "StrictHostKeyChecking=accept-new",
            *extra, f"{SSH_USER}@{host}"]


def known_hosts_path(box):
    """The box's SSH host key, stored by ssh at the first connection and deleted by teardown."""
    return pathlib.Path.home() / ".ssh" / f"{KIT}-{box}.known_hosts"


def tool(variable, default):
    """The command for ssh or rsync, as a list: `default`, or the environment variable
    `variable` when set (the tests put a local stand-in for the box there)."""
    return shlex.split(os.environ.get(variable) or default)


def ssh(clients, args, context):
    command = ssh_command(clients("ec2"), args.box, [])
    if args.print_only:
        print(" ".join(command))
        return 0
    return subprocess.call(command)


def unreachable(box, result):
    """The explanation for an ssh to the box that failed to connect (`result`: its CompletedProcess)."""
    last = (result.stderr.strip().splitlines() or [f"ssh exit status {result.returncode}"])[-1]
    return GpuboxError(
        f"Could not reach box '{box}' over SSH ({last}). If your network or public address changed, "
        f"`.venv/bin/python setup/gpubox.py start --box {box}` allows SSH from your new address (the box keeps "
        f"running). If your SSH key has a passphrase, run `ssh-add` first (sync and teardown cannot ask "
        f"for it). `.venv/bin/python setup/gpubox.py ssh --box {box}` shows ssh's own messages.")


# What a failed setup leaves on the box: cloud-init's "status: error" (the boot script exited non-zero), and,
# when it failed before the idle auto-stop was installed, bootstrap.sh's course-setup-failed.timer.
SETUP_STATE = ("test -e /etc/systemd/system/course-setup-failed.timer && echo course-setup-failed; "
               "cloud-init status 2>/dev/null; exit 0")


def setup_failed(ssh_base):
    """True if the box says its setup failed (False when it cannot tell: still installing, or no answer)."""
    result = subprocess.run([*ssh_base[:-1], *UNATTENDED, ssh_base[-1], SETUP_STATE], capture_output=True, text=True)
    return "course-setup-failed" in result.stdout or "status: error" in result.stdout


def tunnel(clients, args, context):
    # ExitOnForwardFailure: a local port already in use (a local `make lab`) ends ssh with its message,
    # instead of a tunnel that forwards nothing while the printed address reaches the local Jupyter
    forward = ["-N", "-o", "ExitOnForwardFailure=yes", "-L", f"{args.local_port}:127.0.0.1:8888"]
    command = ssh_command(clients("ec2"), args.box, forward)
    base = ssh_command(clients("ec2"), args.box, [])
    read_token = [*base[:-1], "-o", "ConnectTimeout=20", base[-1], "cat", ".course/jupyter-token"]
    if args.print_only:
        print(" ".join(read_token))
        print(" ".join(command))
        return 0
    result = subprocess.run(read_token, capture_output=True, text=True)
    if result.returncode == 255:  # ssh's own failure; any other status is the remote `cat`'s
        raise unreachable(args.box, result)
    token = result.stdout.strip()
    if not token and setup_failed(base):
        raise GpuboxError(f"The box's setup failed, so JupyterLab has no token: see /var/log/cloud-init-output.log "
                          f"on the box (`.venv/bin/python setup/gpubox.py ssh --box {args.box}`, then `sudo tail -n 40 "
                          f"/var/log/cloud-init-output.log`). Fix what it names and run the setup again there with "
                          f"`sudo bash /var/lib/cloud/instance/scripts/part-001`, or teardown this box and launch "
                          f"a new one.")
    if not token:
        print("The box has no Jupyter token yet: it is still installing the course (about 10 minutes after launch, "
              "an estimate, not measured: TensorFlow with NVIDIA's CUDA libraries is most of the install). Follow "
              "along with `ssh` then `sudo tail -f /var/log/cloud-init-output.log`.")
        return 1
    print(f"JupyterLab: http://localhost:{args.local_port}/lab?token={token}")
    print("(keep this window open; Ctrl+C closes the tunnel, the box keeps running)")
    return subprocess.call(command)


# ---------------------------------------------------------------- sync: what the box made, kept here

REMOTE_KIT = "cnn-course-kit"  # the kit's folder in the box's home (bootstrap.sh's default)
SYNCED = ("models", "build/lessons", "build/exercises")  # folders sync copies whole, relative to the kit's folder
# JupyterLab on the box opens the whole kit, so learners edit its lessons there: of this folder sync copies only
# the files the box's git calls changed or new (the kit's own, unchanged, are in this clone already).
EDITED = "notebooks"
NOT_COPIED = "runs.json"  # each lesson's index of runs: the box's lists only the box's runs
STAMP = "-printf '%p\\t%s\\t%T@\\n'"  # GNU find, on the box: path, size in bytes, modification time
# Every file under SYNCED on the box, and every file under EDITED that git says the learner changed or added
# (modified, or untracked and not ignored); in a kit folder that is not a git checkout, every file under EDITED.
LIST_FILES = (f"cd {REMOTE_KIT} 2>/dev/null || exit 0; for top in {' '.join(SYNCED)}; do "
              f"if [ -d \"$top\" ]; then find \"$top\" -type f {STAMP}; fi; done; "
              f"[ -d {EDITED} ] || exit 0; if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then "
              # changed since the clone (edited, staged or committed on the box), and new files git does not ignore
              f"kit=$(git rev-parse -q --verify origin/HEAD || git rev-parse HEAD); {{ git diff -z --name-only "
              f"\"$kit\" -- {EDITED}; git ls-files -z -o --exclude-standard -- {EDITED}; }} | xargs -0 -r -I{{}} "
              f"find {{}} -maxdepth 0 -type f {STAMP}; "
              f"else find {EDITED} -type f -not -path '*/.ipynb_checkpoints/*' {STAMP}; fi; exit 0")
UNATTENDED = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=20"]  # never wait for a password prompt


def sync_record_path(box):
    """Where the last sync of the box is recorded: next to the kit's key for the box, in ~/.ssh."""
    return pathlib.Path.home() / ".ssh" / f"{KIT}-{box}.sync.json"


def read_sync_record(box, instance_id):
    """The last sync of this very instance ({} if none: a new box of the same name starts afresh)."""
    try:
        record = json.loads(sync_record_path(box).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) and record.get("instance_id") == instance_id else {}


def box_files(ssh_base, box):
    """`{path: "size mtime"}` of every file under SYNCED on the box; raises GpuboxError if it cannot be read."""
    result = subprocess.run([*ssh_base[:-1], *UNATTENDED, ssh_base[-1], LIST_FILES],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise unreachable(box, result)
    files = {}
    for line in result.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and pathlib.PurePosixPath(parts[0]).name != NOT_COPIED:
            files[parts[0]] = f"{parts[1]} {parts[2]}"
    return files


def run_folders(paths):
    """The run folders `models/<lesson>/runs/<run>` that hold any of `paths`, sorted."""
    found = set()
    for path in paths:
        parts = pathlib.PurePosixPath(path).parts
        if len(parts) >= 5 and parts[0] == "models" and parts[2] == "runs":
            found.add("/".join(parts[:4]))
    return sorted(found)


def unsynced(files, record):
    """The box's files that were not on the box, as they are now, at the last sync."""
    synced = record.get("files", {})
    return sorted(path for path, stamp in files.items() if synced.get(path) != stamp)


def local_folder(top, into):
    """Where `top` ("models" or "build/lessons") goes on this machine."""
    if top == "models" and os.environ.get("COURSE_MODELS_DIR") and into is None:
        return pathlib.Path(os.environ["COURSE_MODELS_DIR"])
    return pathlib.Path(into or KIT_ROOT) / top


def rsync_files(rsync, shell, source, target, *options, names=None):
    """Runs rsync from the box; returns the itemized lines `(change, path)` it printed. With `names` (paths
    relative to `source`), only those files are copied."""
    if names is not None:
        options = ("--files-from=-", *options)
    result = subprocess.run([*rsync, "-a", "--out-format=%i %n", "-e", shlex.join(shell), *options,
                             source, str(target)], capture_output=True, text=True,
                            input=None if names is None else "".join(f"{name}\n" for name in names))
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        raise GpuboxError(f"rsync could not copy from the box ({last}); nothing here was overwritten or "
                          f"deleted. Check that the box is running (`status`) and run sync again.")
    return [tuple(line.split(" ", 1)) for line in result.stdout.splitlines() if " " in line]


def beside_name(path, box, number):
    """`model.keras` -> `model.from-<box>.keras` (then `-2`, `-3`...): the box's copy of a file that differs."""
    again = "" if number == 1 else f"-{number}"
    return path.with_name(f"{path.stem}.from-{box}{again}{path.suffix}")


def sync(clients, args, context):
    ec2 = clients("ec2")
    instance = find_instance(ec2, args.box)
    ssh_base = ssh_command(ec2, args.box, [])  # refuses a box that is not running
    rsync = tool("GPUBOX_RSYNC", "rsync")
    if shutil.which(rsync[0]) is None:
        raise GpuboxError("No `rsync` command was found; sync copies the box's models with it. Install it "
                          "(Ubuntu/Debian: `sudo apt install rsync`; macOS has it; on Windows run gpubox from "
                          "WSL) and run sync again.")
    shell, host = ssh_base[:-1] + UNATTENDED, ssh_base[-1]
    files = box_files(ssh_base, args.box)  # listed before copying: whatever appears later counts as unsynced
    copied, beside, conflicts = [], [], []
    for top in (*SYNCED, EDITED):
        listed = sorted(path[len(top) + 1:] for path in files if path.startswith(top + "/"))
        if not listed:
            continue
        target = local_folder(top, args.into)
        target.mkdir(parents=True, exist_ok=True)
        source = f"{host}:{REMOTE_KIT}/{top}/"
        names = listed if top == EDITED else None  # of the lessons, only those changed or added on the box
        new = rsync_files(rsync, shell, source, target, "--ignore-existing", f"--exclude={NOT_COPIED}", names=names)
        copied += [f"{top}/{name}" for change, name in new if change.startswith(">f")]
        # what still differs after that is a file both sides have, with different contents
        differ = rsync_files(rsync, shell, source, target, "--dry-run", "--checksum", f"--exclude={NOT_COPIED}",
                             names=names)
        for change, name in differ:
            if not change.startswith(">f"):
                continue
            conflicts.append(f"{top}/{name}")
            for number in range(1, 100):  # the box's copy goes beside the local one, never over it
                aside = beside_name(target / name, args.box, number)
                if not aside.exists():
                    rsync_files(rsync, shell, f"{host}:{REMOTE_KIT}/{top}/{name}", aside, "--ignore-existing")
                    beside.append(str(aside))
                    break
                same = rsync_files(rsync, shell, f"{host}:{REMOTE_KIT}/{top}/{name}", aside,
                                   "--dry-run", "--checksum")
                if not any(change.startswith(">f") for change, _ in same):
                    break  # an earlier sync already put this very copy there
    moved = []
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    for lesson in sorted({folder.split("/")[1] for folder in run_folders(copied)}):
        index = local_folder("models", args.into) / lesson / NOT_COPIED
        if index.exists():  # the next command rebuilds it from every run's finished.json, the box's too
            aside = index.with_name(f"{NOT_COPIED}.before-sync-{stamp}")
            os.rename(index, aside)
            moved.append(str(aside))
    record = {"box": args.box, "instance_id": instance["InstanceId"], "region": context["region"],
              "synced": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "into": {top: str(local_folder(top, args.into)) for top in (*SYNCED, EDITED)},
              "files": files, "copied": copied, "kept_yours_and_put_the_box_copy_beside": beside,
              "indexes_moved_aside": moved}
    record_path = sync_record_path(args.box)
    record_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    record_path.write_text(json.dumps(record, indent=1) + "\n")
    runs = run_folders(files)
    edited = [path for path in files if path.startswith(EDITED + "/")]
    print(f"synced box '{args.box}': {len(copied)} new files copied, {len(runs)} runs on the box now "
          f"all here ({local_folder('models', args.into)}); nothing here was overwritten or deleted")
    if edited:
        print(f"  {plural(len(edited), 'file')} of {EDITED}/ changed or added on the box: here too "
              f"({local_folder(EDITED, args.into)}), each beside yours where yours differs")
    for path in conflicts:
        print(f"  kept yours: {path} differs on the box; the box's copy is beside it as "
              f"{beside_name(pathlib.Path(path), args.box, 1).name} (or -2, -3...)")
    for path in moved:
        print(f"  {NOT_COPIED} moved aside to {path}: the next command rebuilds it from every run, yours "
              f"and the box's")
    print(f"  recorded in {record_path}")
    return 0


def plural(count, word):
    return f"{count} {word}{'' if count == 1 else 's'}"


def check_nothing_is_lost(ec2, instance, args):
    """Before teardown: lists the runs on the box; refuses while any were not synced (unless --force)."""
    box, state = args.box, instance["State"]["Name"]
    if state == "shutting-down":  # an earlier teardown (stopped by Ctrl-C while it waited) already terminated it
        print(f"box '{box}' is already being deleted (shutting-down): nothing on it can be synced now; going on "
              f"with the rest of teardown")
        return
    if state != "running":
        if args.force:
            print(f"box '{box}' is {state}: its runs cannot be listed; --force: deleting it anyway")
            return
        raise GpuboxError(f"Box '{box}' is {state}, so teardown cannot check which runs on it are not yet "
                          f"on this machine: start it (`.venv/bin/python setup/gpubox.py start --box {box}`) and "
                          f"run `.venv/bin/python setup/gpubox.py sync --box {box}`, or add --force to delete it "
                          f"unchecked.")
    try:
        files = box_files(ssh_command(ec2, box, []), box)
    except GpuboxError:
        if args.force:
            print(f"box '{box}' did not answer over SSH: its runs cannot be listed; --force: deleting it anyway")
            return
        raise GpuboxError(f"Box '{box}' did not answer over SSH, so teardown cannot check which runs on it "
                          f"are not yet on this machine: check `.venv/bin/python setup/gpubox.py ssh --box {box}` (a "
                          f"changed address: `start --box {box}` allows the new one; a key with a passphrase: "
                          f"`ssh-add` first) and run `.venv/bin/python setup/gpubox.py sync --box {box}`, or add "
                          f"--force to delete it unchecked.") from None
    record = read_sync_record(box, instance["InstanceId"])
    runs, missing = run_folders(files), unsynced(files, record)
    new_runs = run_folders(missing)
    last = f"last synced {record['synced']}" if record else "never synced"
    others = [path for path in missing if not run_folders([path])]  # the lessons edited on the box, among them
    print(f"box '{box}' holds {plural(len(runs), 'run')} and {plural(len(files), 'file')} to keep (in "
          f"{', '.join(SYNCED)}, and those changed or added in {EDITED}/; {last}):")
    for run in runs:
        print(f"  {run}{'   NOT SYNCED' if run in new_runs else ''}")
    for path in others:
        print(f"  {path}   NOT SYNCED")
    if missing and not args.force:
        what = " and ".join(([plural(len(new_runs), "run")] if new_runs else [])
                            + ([plural(len(others), "other file" if new_runs else "file")] if others else []))
        raise GpuboxError(f"Box '{box}' holds {what} not yet copied to this machine ({last}): run "
                          f"`.venv/bin/python setup/gpubox.py sync --box {box}` first, or add --force to delete them "
                          f"with the box.")
    if missing:
        print(f"--force: {len(missing)} files on the box that are not here will be deleted with it")


def stop(clients, args, context):
    ec2 = clients("ec2")
    instance = find_instance(ec2, args.box)
    ec2.stop_instances(InstanceIds=[instance["InstanceId"]])
    if not args.no_wait:
        ec2.get_waiter("instance_stopped").wait(InstanceIds=[instance["InstanceId"]])
    print(f"stopped {instance['InstanceId']}: the GPU costs nothing now; the disk still does "
          f"(see `status`). `start` brings it back.")
    return 0


def start(clients, args, context):
    ec2 = clients("ec2")
    instance = find_instance(ec2, args.box)
    context["instance_type"] = instance["InstanceType"]  # for an error's quota (G and VT, or P)
    ensure_security_group(ec2, args.box, instance["VpcId"], my_public_ip(args.my_ip))
    ec2.start_instances(InstanceIds=[instance["InstanceId"]])
    if not args.no_wait:
        ec2.get_waiter("instance_running").wait(InstanceIds=[instance["InstanceId"]])
    instance = find_instance(ec2, args.box)
    print(f"started {instance['InstanceId']} at {instance.get('PublicIpAddress', '-')} "
          f"(a new address each start)")
    print_next_steps(args.box, context["region"])
    return 0


def teardown(clients, args, context):
    ec2 = clients("ec2")
    instances = find_instances(ec2, args.box)
    for instance in instances:
        check_nothing_is_lost(ec2, instance, args)
    if instances and not confirm(args, f"Terminate box '{args.box}' and delete its disk?"):
        print("Nothing was deleted.")
        return 1
    for instance in instances:
        if instance.get("SpotInstanceRequestId"):
            ec2.cancel_spot_instance_requests(SpotInstanceRequestIds=[instance["SpotInstanceRequestId"]])
        ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
        print(f"terminating {instance['InstanceId']}")
    if instances:
        ec2.get_waiter("instance_terminated").wait(
            InstanceIds=[i["InstanceId"] for i in instances],
            WaiterConfig={"Delay": 2 if os.environ.get("AWS_ENDPOINT_URL") else 15})
    if known_hosts_path(args.box).exists():
        known_hosts_path(args.box).unlink()
        print(f"deleted {known_hosts_path(args.box)}")
    for volume in ec2.describe_volumes(Filters=box_filter(args.box, "disk") + [
            {"Name": "status", "Values": ["available"]}])["Volumes"]:
        ec2.delete_volume(VolumeId=volume["VolumeId"])  # normally gone with the instance
        print(f"deleted disk {volume['VolumeId']}")
    for group in ec2.describe_security_groups(Filters=box_filter(args.box, "firewall"))["SecurityGroups"]:
        ec2.delete_security_group(GroupId=group["GroupId"])
        print(f"deleted security group {group['GroupId']}")
    for pair in ec2.describe_key_pairs(Filters=box_filter(args.box, "key"))["KeyPairs"]:
        ec2.delete_key_pair(KeyName=pair["KeyName"])
        print(f"deleted key pair {pair['KeyName']}")
        key_file = private_key_path(args.box, tag_value(pair, TAG_KEY_ORIGIN))
        if tag_value(pair, TAG_KEY_ORIGIN) == "created" and key_file.exists():
            key_file.unlink()  # the kit's own key for a box that no longer exists
            print(f"deleted {key_file}")
    for table in ec2.describe_route_tables(Filters=box_filter(args.box, "routes"))["RouteTables"]:
        for association in table.get("Associations", []):
            ec2.disassociate_route_table(AssociationId=association["RouteTableAssociationId"])
        ec2.delete_route_table(RouteTableId=table["RouteTableId"])
    for gateway in ec2.describe_internet_gateways(Filters=box_filter(args.box, "gateway"))["InternetGateways"]:
        for attachment in gateway.get("Attachments", []):
            ec2.detach_internet_gateway(InternetGatewayId=gateway["InternetGatewayId"],
                                        VpcId=attachment["VpcId"])
        ec2.delete_internet_gateway(InternetGatewayId=gateway["InternetGatewayId"])
    for subnet in ec2.describe_subnets(Filters=box_filter(args.box, "subnet"))["Subnets"]:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    for vpc in ec2.describe_vpcs(Filters=box_filter(args.box, "vpc"))["Vpcs"]:
        ec2.delete_vpc(VpcId=vpc["VpcId"])
        print(f"deleted VPC {vpc['VpcId']} and its subnets, gateway and routes")
    left = leftovers(ec2, args.box)
    if left:
        print("Still tagged for this box (delete these in the EC2 console, or run teardown "
              "again in a minute):")
        for resource_type, resource_id in left:
            print(f"  {resource_type} {resource_id}")
        return 1
    print(f"Nothing tagged for box '{args.box}' is left in {context['region']}: nothing of it costs anything there.")
    if recorded_region(args.box) == context["region"]:
        region_record_path(args.box).unlink()
    if not instances:  # none here: was the box launched in another region?
        found = regions_with_box(clients, args.box, context["region"])
        if found:
            raise GpuboxError(f"Box '{args.box}' still runs or is stopped in another region: {where_else(found)}. "
                              f"It is billed there: run `.venv/bin/python setup/gpubox.py teardown --box {args.box} "
                              f"--region {next(iter(found))}`.")
    return 0


def still_exists(ec2, resource_type, resource_id):
    """True if a tagged resource still exists (tags can outlive what they tagged)."""
    lookups = {
        "instance": lambda: [i for r in ec2.describe_instances(InstanceIds=[resource_id])["Reservations"]
                             for i in r["Instances"] if i["State"]["Name"] != "terminated"],
        "volume": lambda: ec2.describe_volumes(VolumeIds=[resource_id])["Volumes"],
        "security-group": lambda: ec2.describe_security_groups(GroupIds=[resource_id])["SecurityGroups"],
        "key-pair": lambda: ec2.describe_key_pairs(KeyPairIds=[resource_id])["KeyPairs"],
        "vpc": lambda: ec2.describe_vpcs(VpcIds=[resource_id])["Vpcs"],
        "subnet": lambda: ec2.describe_subnets(SubnetIds=[resource_id])["Subnets"],
        "internet-gateway": lambda: ec2.describe_internet_gateways(
            InternetGatewayIds=[resource_id])["InternetGateways"],
        "route-table": lambda: ec2.describe_route_tables(RouteTableIds=[resource_id])["RouteTables"],
    }
    if resource_type not in lookups:
        return True
    try:
        return bool(lookups[resource_type]())
    except aws_errors.ClientError as error:
        if "NotFound" in error.response["Error"]["Code"]:
            return False
        raise


def leftovers(ec2, box):
    """Returns (type, id) of every EC2 resource still tagged for the box."""
    tags = ec2.describe_tags(Filters=[{"Name": "key", "Values": [TAG_BOX]},
                                      {"Name": "value", "Values": [box]}])["Tags"]
    found = sorted({(t["ResourceType"], t["ResourceId"]) for t in tags})
    return [item for item in found if still_exists(ec2, *item)]


COMMANDS = {"launch": launch, "status": status, "ssh": ssh, "tunnel": tunnel, "sync": sync,
            "stop": stop, "start": start, "teardown": teardown}


def parse_args(argv):
    parser = argparse.ArgumentParser(prog=".venv/bin/python setup/gpubox.py", description=__doc__.split("\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--box", default="gpubox", help="your box's name, used in its tags (default gpubox)")
    common.add_argument("--region", help="AWS region (default: your AWS config's, else us-east-1)")
    common.add_argument("--yes", action="store_true",
                        help="do not ask before creating (launch) or deleting (teardown)")
    commands = parser.add_subparsers(dest="command", required=True)
    launch_parser = commands.add_parser("launch", parents=[common], help="create the box (safe to re-run)")
    launch_parser.add_argument("--instance-type", default="g4dn.xlarge", help="default g4dn.xlarge")
    launch_parser.add_argument("--spot", action="store_true", help="spot: cheaper, may be stopped by AWS")
    launch_parser.add_argument("--disk-gb", type=int, default=100, help="default 100, at least 40")
    launch_parser.add_argument("--idle-minutes", type=int, default=60,
                               help="stop the box after this many idle minutes (default 60, at least 5)")
    launch_parser.add_argument("--ami-parameter", default=DEFAULT_AMI_PARAMETER,
                               help="SSM parameter holding the AMI id")
    launch_parser.add_argument("--repo", help="URL the box clones the kit from (default: origin)")
    launch_parser.add_argument("--ssh-timeout", type=int, default=600,
                               help="seconds to wait for SSH on the new box (default 600)")
    for name in ("launch", "start"):
        sub = launch_parser if name == "launch" else commands.add_parser(
            "start", parents=[common], help="start a stopped box")
        sub.add_argument("--my-ip", default="auto", help="your public IPv4 for SSH, or auto")
        sub.add_argument("--no-wait", action="store_true", help="do not wait for the box")
    stop_parser = commands.add_parser("stop", parents=[common], help="stop the box (disk kept)")
    stop_parser.add_argument("--no-wait", action="store_true")
    commands.add_parser("status", parents=[common], help="state, address, uptime, cost so far")
    for name, text in (("ssh", "a shell on the box"), ("tunnel", "JupyterLab on localhost")):
        sub = commands.add_parser(name, parents=[common], help=text)
        sub.add_argument("--print", dest="print_only", action="store_true",
                         help="print the ssh command instead of running it")
        if name == "tunnel":
            sub.add_argument("--local-port", type=int, default=8888, help="default 8888")
    sync_parser = commands.add_parser("sync", parents=[common],
                                      help="copy the box's models/, build/lessons/, build/exercises/ and the "
                                           "notebooks/ changed on the box here (never overwrites)")
    sync_parser.add_argument("--into", help="the kit's folder to copy into (default: this one)")
    teardown_parser = commands.add_parser("teardown", parents=[common], help="delete everything the kit created")
    teardown_parser.add_argument("--force", action="store_true",
                                 help="delete the box even if it holds runs that were never synced")
    args = parser.parse_args(argv)
    # teardown takes any name, so it still deletes what launches before this check left behind
    if args.command != "teardown" and not BOX_NAME.fullmatch(args.box):
        parser.error(f"--box '{args.box}' is not a box name: use 1 to 40 letters (a-z, A-Z), digits "
                     f"and hyphens, starting with a letter or digit, for example --box gpubox-2")
    if args.region is not None and not REGION_NAME.fullmatch(args.region):
        parser.error(f"'{args.region}' is not an AWS region name (for example us-east-1); check --region")
    if not 1 <= getattr(args, "local_port", 8888) <= 65535:
        parser.error(f"--local-port must be a port from 1 to 65535, not {args.local_port}; "
                     f"the default is 8888")
    if not GPU_TYPE.fullmatch(getattr(args, "instance_type", "g4dn.xlarge")):
        parser.error(f"--instance-type {args.instance_type} is not a G or P instance type (the GPU families whose "
                     f"vCPU quota the kit checks): use g4dn.xlarge (the default), g6.xlarge or g5.xlarge")
    if getattr(args, "disk_gb", 100) < 40:
        parser.error("--disk-gb must be at least 40: the AMI and the datasets need the room")
    if getattr(args, "idle_minutes", 60) < 5:
        parser.error("--idle-minutes must be at least 5")
    try:  # checked here, before any call to AWS; 'auto' is looked up when it is needed
        if getattr(args, "my_ip", "auto") != "auto":
            args.my_ip = public_ipv4(args.my_ip)
        if getattr(args, "repo", None):
            without_credentials(args.repo, "--repo")
    except GpuboxError as error:
        parser.error(str(error))
    return args


def main(argv=None, session=None):
    """Runs one command; AWS errors become a one-paragraph explanation (exit 1)."""
    args = parse_args(argv)
    context = {"region": args.region, "instance_type": getattr(args, "instance_type", None),
               "spot": getattr(args, "spot", False)}
    try:
        session = session or boto3.Session(region_name=args.region)
    except aws_errors.BotoCoreError as error:  # AWS_PROFILE names no profile, ~/.aws/config cannot be read
        print(explain(error, context), file=sys.stderr)
        return 1
    region = context["region"] = args.region or session.region_name or "us-east-1"
    if not REGION_NAME.fullmatch(region):  # from AWS_DEFAULT_REGION or ~/.aws/config (--region is checked above)
        print(f"'{region}' is not an AWS region name (for example us-east-1); check --region, AWS_DEFAULT_REGION or "
              f"the region in ~/.aws/config.", file=sys.stderr)
        return 1
    recorded = None if args.region else recorded_region(args.box)
    if recorded and recorded != region:
        print(f"note  region {recorded}, where box '{args.box}' was launched (recorded in "
              f"{region_record_path(args.box)}); --region chooses another", file=sys.stderr)
        region = context["region"] = recorded

    def clients(name, in_region=None):
        try:
            return session.client(name, region_name=in_region or region)
        except aws_errors.InvalidRegionError:  # a region from AWS_DEFAULT_REGION or ~/.aws/config
            raise GpuboxError(f"'{region}' is not an AWS region name (for example us-east-1); check "
                              f"--region, AWS_DEFAULT_REGION or the region in ~/.aws/config.") from None

    try:
        return COMMANDS[args.command](clients, args, context)
    except NoBox as error:
        found = regions_with_box(clients, args.box, region)
        if found:
            error = GpuboxError(f"There is no box named '{args.box}' in {region}, but there is in another region: "
                                f"{where_else(found)}. Run the command again with --region {next(iter(found))}.")
        print(explain(error, context), file=sys.stderr)
        return 1
    except (GpuboxError, aws_errors.ClientError, aws_errors.NoCredentialsError,
            aws_errors.PartialCredentialsError) as error:
        print(explain(error, context), file=sys.stderr)
        return 1
    except aws_errors.WaiterError as error:
        print(f"AWS did not reach the expected state in time ({error}). Run `status` to see "
              f"where the box is, then the same command again.", file=sys.stderr)
        return 1
    except aws_errors.EndpointConnectionError as error:
        print(f"Could not reach AWS ({error}). Check your internet connection and the region "
              f"name, then run the same command again.", file=sys.stderr)
        return 1
    except aws_errors.BotoCoreError as error:  # a profile, config file or SSO login botocore cannot use
        print(explain(error, context), file=sys.stderr)
        return 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: every step is safe to repeat; run the same command again (`status` shows "
              "what exists).", file=sys.stderr)
        sys.exit(130)
