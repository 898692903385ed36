"""setup/gpubox.py against moto's EC2 emulator, run as a server on 127.0.0.1.

The real script runs as a subprocess with `AWS_ENDPOINT_URL` pointing at the
emulator, fake credentials and a temporary HOME (so keys land in a temporary
~/.ssh). The emulator is seeded with a fake list of AMIs (`MOTO_AMIS_PATH`)
holding two Deep Learning Base GPU AMIs and an unrelated one. Errors the
emulator cannot produce are injected at the client, in-process.
"""

import datetime
import json
import os
import pathlib
import re
import socket
import stat
import subprocess
import sys
import time
import urllib.request

import boto3
import pytest
from botocore import exceptions as aws_errors
from botocore.stub import Stubber

import kit_scripts  # tests/kit_scripts.py

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "setup" / "gpubox.py"
REGION = "us-east-1"
MY_IP = "203.0.113.7"
NEWEST_AMI = "ami-0dl0000000000new"
FAKE_AMIS = [
    {"ami_id": "ami-0dl0000000000old", "name": "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) 20260901",
     "creation_date": "2026-09-01T00:00:00.000Z"},
    {"ami_id": NEWEST_AMI, "name": "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) 20261115",
     "creation_date": "2026-11-15T00:00:00.000Z"},
    {"ami_id": "ami-0ubuntu00000plain", "name": "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20261201",
     "creation_date": "2026-12-01T00:00:00.000Z"},
]


gpubox = kit_scripts.load("setup/gpubox.py")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


HOST_AWS_SETTINGS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN")  # a host's, never a test's


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory):
    """Starts moto in server mode on 127.0.0.1 with the fake AMI list; yields its URL."""
    amis = tmp_path_factory.mktemp("moto") / "amis.json"
    amis.write_text(json.dumps([dict(ami, owner_id="898082745236", state="available",
                                     public=True, architecture="x86_64",
                                     root_device_type="ebs", root_device_name="/dev/sda1",
                                     virtualization_type="hvm", hypervisor="xen",
                                     description=ami["name"]) for ami in FAKE_AMIS]))
    port = free_port()
    env = {name: value for name, value in os.environ.items() if name not in HOST_AWS_SETTINGS}  # moto reads them too
    env.update(MOTO_AMIS_PATH=str(amis), AWS_EC2_METADATA_DISABLED="true")
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("the moto server did not start")
            time.sleep(0.3)
    yield url
    server.terminate()
    server.wait(timeout=20)


# ssh's stand-in: skips ssh's options and the host, then runs the remote command in the folder
# GPUBOX_TEST_BOX_HOME as the box's user would in its home (rsync's `rsync --server ...` too).
# A missing folder answers like an unreachable host: exit status 255.
STAND_IN_SSH = """#!/bin/sh
while [ $# -gt 0 ]; do
    case "$1" in
        -i|-o|-l|-p|-L|-F|-E) shift 2 ;;
        -*) shift ;;
        *) shift; break ;;
    esac
done
cd "$GPUBOX_TEST_BOX_HOME" 2>/dev/null || { echo "ssh: connect to host: Connection timed out" >&2; exit 255; }
exec sh -c "$*"
"""


def stand_in_ssh(folder):
    script = folder / "stand-in-ssh"
    script.write_text(STAND_IN_SSH)
    script.chmod(0o755)
    return script


@pytest.fixture(autouse=True)
def no_host_aws_settings(monkeypatch):
    """The host's AWS profile, session token or instance role (from EC2's metadata service) never reach a test."""
    for name in HOST_AWS_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture()
def aws(moto_server, tmp_path, monkeypatch):
    """A clean emulator, fake credentials and a temporary HOME; yields (env, ec2 client)."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"))
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "USERPROFILE": str(home),
           "AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
           "AWS_CONFIG_FILE": str(home / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(home / "none"),
           "AWS_EC2_METADATA_DISABLED": "true",  # an EC2 runner's instance role is no credential here
           "GPUBOX_SSH": str(stand_in_ssh(tmp_path)), "GPUBOX_TEST_BOX_HOME": str(tmp_path / "box")}
    (tmp_path / "box").mkdir()  # the box's home: empty, so teardown finds nothing to lose
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=moto_server)
    return env, ec2, home


def gpubox_cli(env, *args):
    # no terminal to answer a question (as under CI): only --yes agrees, even when the tests run in a terminal
    result = subprocess.run([sys.executable, str(SCRIPT), *args], env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=120)
    return result


LAUNCH = ("launch", "--box", "alice", "--my-ip", MY_IP, "--no-wait", "--yes",
          "--repo", "https://example.invalid/cnn-course-kit.git", "--disk-gb", "120")


def tagged_instances(ec2, states=("pending", "running", "stopping", "stopped")):
    reservations = ec2.describe_instances(Filters=[
        {"Name": "tag:course-kit:box", "Values": ["alice"]},
        {"Name": "instance-state-name", "Values": list(states)}])["Reservations"]
    return [i for r in reservations for i in r["Instances"]]


def test_launch_creates_one_safe_tagged_box(aws):
    env, ec2, home = aws
    result = gpubox_cli(env, *LAUNCH)
    assert result.returncode == 0, result.stderr
    assert "Estimated cost" in result.stdout and "/hour" in result.stdout
    # $0.526 an hour (the kit's list price), 120 GB gp3 at $0.08 a month (730 h), $0.005 an hour for the address
    assert "  running: $0.544/hour (g4dn.xlarge $0.5260, 120 GB gp3 disk, public IPv4)\n" in result.stdout
    assert "  stopped: $9.60/month for the disk only; teardown: $0\n" in result.stdout
    assert result.stdout.index("Estimated cost") < result.stdout.index("launched")

    (instance,) = tagged_instances(ec2)
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert tags["course-kit"] == "cnn-course-kit" and tags["course-kit:box"] == "alice"
    assert tags["course-kit:idle-minutes"] == "60"
    assert instance["ImageId"] == NEWEST_AMI  # newest DLAMI by date, not the plain Ubuntu one
    assert instance["InstanceType"] == "g4dn.xlarge"
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    shutdown = ec2.describe_instance_attribute(InstanceId=instance["InstanceId"],
                                               Attribute="instanceInitiatedShutdownBehavior")
    assert shutdown["InstanceInitiatedShutdownBehavior"]["Value"] == "stop"
    user_data = ec2.describe_instance_attribute(InstanceId=instance["InstanceId"], Attribute="userData")
    import base64
    import gzip
    script = gzip.decompress(base64.b64decode(user_data["UserData"]["Value"])).decode()  # cloud-init unpacks it
    assert script.startswith("#!/usr/bin/env bash\nexport COURSE_REPO=https://example.invalid/")
    assert "set -euo pipefail" in script and "IDLE_MINUTES=60" in script

    (volume,) = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id",
                                               "Values": [instance["InstanceId"]]}])["Volumes"]
    assert volume["VolumeType"] == "gp3" and volume["Size"] == 120

    (group,) = ec2.describe_security_groups(GroupIds=[g["GroupId"] for g in instance["SecurityGroups"]])["SecurityGroups"]
    assert [(p["IpProtocol"], p["FromPort"], p["ToPort"], [r["CidrIp"] for r in p["IpRanges"]])
            for p in group["IpPermissions"]] == [("tcp", 22, 22, [f"{MY_IP}/32"])]
    assert not any(p.get("Ipv6Ranges") for p in group["IpPermissions"])
    everything = json.dumps(group["IpPermissions"])
    assert "0.0.0.0/0" not in everything and "::/0" not in everything
    assert sorted(p["FromPort"] for p in group["IpPermissionsEgress"]) == [80, 443]

    key_file = home / ".ssh" / "cnn-course-kit-alice.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert ROOT not in key_file.resolve().parents
    assert "PRIVATE KEY" in key_file.read_text()
    assert instance["KeyName"] == "cnn-course-kit-alice"


def count_everything(ec2):
    return {
        "instances": len(tagged_instances(ec2)),
        "groups": len(ec2.describe_security_groups()["SecurityGroups"]),
        "keys": len(ec2.describe_key_pairs()["KeyPairs"]),
        "vpcs": len(ec2.describe_vpcs()["Vpcs"]),
        "subnets": len(ec2.describe_subnets()["Subnets"]),
    }


def test_second_launch_creates_nothing_new(aws):
    env, ec2, _ = aws
    assert gpubox_cli(env, *LAUNCH).returncode == 0
    before = count_everything(ec2)
    again = gpubox_cli(env, *LAUNCH)
    assert again.returncode == 0, again.stderr
    assert "already exists" in again.stdout and "nothing new was created" in again.stdout
    assert count_everything(ec2) == before


def test_stop_start_status_and_moving_ip(aws):
    env, ec2, _ = aws
    assert gpubox_cli(env, *LAUNCH).returncode == 0
    shown = gpubox_cli(env, "status", "--box", "alice")
    assert shown.returncode == 0, shown.stderr
    assert "running" in shown.stdout and "g4dn.xlarge" in shown.stdout
    assert "cost       ~$" in shown.stdout and "idle stop  after 60" in shown.stdout
    uptime = float(re.search(r"uptime     ([0-9.]+) h", shown.stdout).group(1))
    cost, hourly = map(float, re.search(r"cost       ~\$([0-9.]+) so far .*\(\$([0-9.]+)/h", shown.stdout).groups())
    assert hourly == 0.526 and cost == pytest.approx(uptime * hourly, abs=0.006)  # hours x price, rounded to cents
    assert "120 GB gp3" in shown.stdout

    stopped = gpubox_cli(env, "stop", "--box", "alice", "--no-wait")
    assert stopped.returncode == 0, stopped.stderr
    assert tagged_instances(ec2)[0]["State"]["Name"] in ("stopping", "stopped")
    assert "stopped" in gpubox_cli(env, "status", "--box", "alice").stdout

    started = gpubox_cli(env, "start", "--box", "alice", "--my-ip", "198.51.100.9")
    assert started.returncode == 0, started.stderr
    (instance,) = tagged_instances(ec2)
    assert instance["State"]["Name"] == "running"
    group = ec2.describe_security_groups(GroupIds=[instance["SecurityGroups"][0]["GroupId"]])["SecurityGroups"][0]
    assert [r["CidrIp"] for p in group["IpPermissions"] for r in p["IpRanges"]] == ["198.51.100.9/32"]

    printed = gpubox_cli({k: v for k, v in env.items() if k != "GPUBOX_SSH"}, "ssh", "--box", "alice", "--print")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.startswith("ssh -i ") and f"ubuntu@{instance['PublicIpAddress']}" in printed.stdout
    no_ssh = gpubox_cli({**env, "GPUBOX_SSH": "/nonexistent/ssh"}, "ssh", "--box", "alice", "--print")
    assert no_ssh.returncode == 1 and "Traceback" not in no_ssh.stderr
    assert ("No `ssh` command was found. Install OpenSSH (Ubuntu, Debian and WSL on Windows: `sudo apt install "
            "openssh-client`; macOS has it) and try again.") in no_ssh.stderr
    tunnel = gpubox_cli(env, "tunnel", "--box", "alice", "--print")
    assert "-L 8888:127.0.0.1:8888" in tunnel.stdout and "cat .course/jupyter-token" in tunnel.stdout
    # a local port already taken (say by `make lab`) ends ssh with its message, not a tunnel to nowhere
    assert "-o ExitOnForwardFailure=yes -L 8888" in tunnel.stdout


def tagged_resources(ec2):
    """Every EC2 resource that still exists and carries the box's tag (moto keeps
    the tags of deleted resources, so each type is described, not just the tags)."""
    mine = [{"Name": "tag:course-kit:box", "Values": ["alice"]}]
    found = {
        "groups": ec2.describe_security_groups(Filters=mine)["SecurityGroups"],
        "keys": ec2.describe_key_pairs(Filters=mine)["KeyPairs"],
        "volumes": ec2.describe_volumes(Filters=mine)["Volumes"],
        "vpcs": ec2.describe_vpcs(Filters=mine)["Vpcs"],
        "subnets": ec2.describe_subnets(Filters=mine)["Subnets"],
        "gateways": ec2.describe_internet_gateways(Filters=mine)["InternetGateways"],
        "routes": ec2.describe_route_tables(Filters=mine)["RouteTables"],
        "instances": tagged_instances(ec2, states=("pending", "running", "stopping", "stopped",
                                                   "shutting-down")),
    }
    return {kind: items for kind, items in found.items() if items}


def test_teardown_leaves_nothing_and_runs_twice(aws):
    env, ec2, home = aws
    before = count_everything(ec2)
    assert gpubox_cli(env, *LAUNCH).returncode == 0
    first = gpubox_cli(env, "teardown", "--box", "alice", "--yes")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Nothing tagged for box 'alice' is left" in first.stdout
    assert tagged_resources(ec2) == {}
    assert tagged_instances(ec2) == []
    assert count_everything(ec2) == before
    assert not (home / ".ssh" / "cnn-course-kit-alice.pem").exists()
    second = gpubox_cli(env, "teardown", "--box", "alice", "--yes")
    assert second.returncode == 0, second.stderr
    assert "Nothing tagged" in second.stdout


def test_a_box_launched_in_another_region_is_found_there_by_its_later_commands(aws, moto_server):
    """launch's capacity advice is --region us-west-2: a later command without --region must not look only in the
    default region and call a box that is running elsewhere gone ("it costs $0")."""
    env, _, home = aws
    west = boto3.client("ec2", region_name="us-west-2", endpoint_url=moto_server)
    assert gpubox_cli(env, *LAUNCH, "--region", "us-west-2").returncode == 0
    record = home / ".ssh" / "cnn-course-kit-alice.region.json"
    assert json.loads(record.read_text())["region"] == "us-west-2"
    shown = gpubox_cli(env, "status", "--box", "alice")
    assert shown.returncode == 0, shown.stderr
    assert "us-west-2" in shown.stdout and shown.stderr.strip().splitlines() == [
        f"note  region us-west-2, where box 'alice' was launched (recorded in {record}); --region chooses another"]
    assert "There is no box" in gpubox_cli(env, "status", "--box", "alice", "--region", REGION).stderr

    record.unlink()  # launched from another machine, or before the kit recorded regions
    lost = gpubox_cli(env, "status", "--box", "alice")
    assert lost.returncode == 1 and "Traceback" not in lost.stderr
    (line,) = lost.stderr.strip().splitlines()
    instance_id = tagged_instances(west)[0]["InstanceId"]
    assert line == (f"There is no box named 'alice' in us-east-1, but there is in another region: us-west-2 "
                    f"({instance_id}). Run the command again with --region us-west-2.")
    down = gpubox_cli(env, "teardown", "--box", "alice", "--yes")
    assert down.returncode == 1 and "Traceback" not in down.stderr and "$0" not in down.stdout
    assert "Nothing tagged for box 'alice' is left in us-east-1: nothing of it costs anything there." in down.stdout
    (line,) = down.stderr.strip().splitlines()
    assert line == (f"Box 'alice' still runs or is stopped in another region: us-west-2 ({instance_id}). It is "
                    f"billed there: run `.venv/bin/python setup/gpubox.py teardown --box alice --region us-west-2`.")
    assert len(tagged_instances(west)) == 1

    assert gpubox_cli(env, *LAUNCH, "--region", "us-west-2").returncode == 0  # finds the box, records its region
    down = gpubox_cli(env, "teardown", "--box", "alice", "--yes")
    assert down.returncode == 0, down.stdout + down.stderr
    assert "left in us-west-2" in down.stdout and tagged_instances(west) == []
    assert not record.exists()  # the next launch goes to the default region again


def test_the_search_of_other_regions_passes_over_a_region_that_refuses():
    import types

    def clients(name, region=None):
        def describe_instances(Filters):
            if region == "me-south-1":  # a region the account has not enabled
                raise client_error("AuthFailure", "emulated", "DescribeInstances")
            found = [{"InstanceId": "i-0west", "LaunchTime": datetime.datetime.now()}] if region == "us-west-2" else []
            return {"Reservations": [{"Instances": found}]}
        regions = [{"RegionName": name} for name in ("us-east-1", "me-south-1", "us-west-2", "eu-west-1")]
        return types.SimpleNamespace(describe_regions=lambda: {"Regions": regions},
                                     describe_instances=describe_instances)

    assert gpubox.regions_with_box(clients, "alice", "us-east-1") == {"us-west-2": ["i-0west"]}
    assert gpubox.regions_with_box(clients, "alice", "us-west-2") == {}


def test_without_default_vpc_creates_and_removes_its_own(aws):
    env, ec2, _ = aws
    remove_default_vpc(ec2)
    assert gpubox_cli(env, *LAUNCH).returncode == 0
    (vpc,) = ec2.describe_vpcs()["Vpcs"]
    assert {t["Key"]: t["Value"] for t in vpc["Tags"]}["course-kit:box"] == "alice"
    assert tagged_instances(ec2)[0]["VpcId"] == vpc["VpcId"]
    assert gpubox_cli(env, *LAUNCH).returncode == 0
    assert len(ec2.describe_vpcs()["Vpcs"]) == 1
    down = gpubox_cli(env, "teardown", "--box", "alice", "--yes")
    assert down.returncode == 0, down.stdout + down.stderr
    assert ec2.describe_vpcs()["Vpcs"] == []
    assert ec2.describe_internet_gateways()["InternetGateways"] == []
    assert tagged_resources(ec2) == {}


def test_a_launch_after_an_interrupted_one_restricts_egress_and_never_starts_an_unreachable_box(aws):
    env, ec2, home = aws
    assert gpubox_cli(env, *LAUNCH).returncode == 0
    (instance,) = tagged_instances(ec2)
    group_id = instance["SecurityGroups"][0]["GroupId"]
    # what an interrupted launch leaves: no instance, AWS's allow-all egress, a key pair whose key file is gone
    ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
    ec2.authorize_security_group_egress(GroupId=group_id, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    (home / ".ssh" / "cnn-course-kit-alice.pem").unlink()

    result = gpubox_cli(env, *LAUNCH)
    assert result.returncode == 0, result.stderr
    assert "restricted to HTTPS and HTTP again" in result.stdout and "replaced with a new one" in result.stdout
    (group,) = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    assert sorted((p["IpProtocol"], p.get("FromPort")) for p in group["IpPermissionsEgress"]) == [
        ("tcp", 80), ("tcp", 443)]
    (relaunched,) = tagged_instances(ec2)
    assert relaunched["KeyName"] == "cnn-course-kit-alice"
    assert "PRIVATE KEY" in (home / ".ssh" / "cnn-course-kit-alice.pem").read_text()


def remove_default_vpc(ec2):
    (default,) = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [default["VpcId"]]}])["Subnets"]:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    for gateway in ec2.describe_internet_gateways()["InternetGateways"]:
        ec2.detach_internet_gateway(InternetGatewayId=gateway["InternetGatewayId"], VpcId=default["VpcId"])
        ec2.delete_internet_gateway(InternetGatewayId=gateway["InternetGatewayId"])
    ec2.delete_vpc(VpcId=default["VpcId"])


def test_a_launch_after_an_interrupted_one_repairs_its_own_network(aws):
    env, ec2, _ = aws
    remove_default_vpc(ec2)
    assert gpubox_cli(env, *LAUNCH).returncode == 0
    (instance,) = tagged_instances(ec2)
    (table,) = ec2.describe_route_tables(Filters=[{"Name": "tag:course-kit:box", "Values": ["alice"]}])["RouteTables"]
    subnet_id = instance["SubnetId"]
    # what a launch interrupted after creating the pieces leaves: no instance, no public
    # addresses, no route to the internet, the table not used by the subnet
    ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
    ec2.modify_subnet_attribute(SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": False})
    ec2.delete_route(RouteTableId=table["RouteTableId"], DestinationCidrBlock="0.0.0.0/0")
    for association in table["Associations"]:
        ec2.disassociate_route_table(AssociationId=association["RouteTableAssociationId"])

    result = gpubox_cli(env, *LAUNCH)
    assert result.returncode == 0, result.stderr
    (subnet,) = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
    assert subnet["MapPublicIpOnLaunch"] is True
    (table,) = ec2.describe_route_tables(RouteTableIds=[table["RouteTableId"]])["RouteTables"]
    (gateway,) = ec2.describe_internet_gateways()["InternetGateways"]
    assert {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": gateway["InternetGatewayId"]}.items() <= next(
        route for route in table["Routes"] if route.get("DestinationCidrBlock") == "0.0.0.0/0").items()
    subnets = ec2.describe_subnets(Filters=[{"Name": "tag:course-kit:box", "Values": ["alice"]}])["Subnets"]
    assert sorted(a["SubnetId"] for a in table["Associations"]) == sorted(s["SubnetId"] for s in subnets)
    assert subnet_id in [s["SubnetId"] for s in subnets] and tagged_instances(ec2)[0]["SubnetId"] == subnet_id


class RecordingSession:
    """A boto3 session talking to moto that records the requests made with `method`."""

    def __init__(self, method):
        self.session, self.region_name, self.method, self.requests = boto3.Session(region_name=REGION), REGION, method, []

    def client(self, name, region_name=None):
        client = self.session.client(name, region_name=region_name)
        if hasattr(client, self.method):
            original = getattr(client, self.method)

            def record(**request):
                self.requests.append(request)
                return original(**request)
            setattr(client, self.method, record)
        return client


def test_the_boot_script_is_sent_gzipped_well_under_ec2s_limit(aws, capsys, monkeypatch):
    import gzip

    session = RecordingSession("run_instances")
    assert gpubox.main(list(LAUNCH), session=session) == 0
    (request,) = session.requests
    sent = request["UserData"]
    assert isinstance(sent, bytes) and len(sent) < 16 * 1024  # EC2's limit, before base64
    assert gzip.decompress(sent).decode() == gpubox.user_data("https://example.invalid/cnn-course-kit.git", 60)
    assert len(sent) < 8 * 1024  # room for bootstrap.sh to grow
    monkeypatch.setattr(gpubox, "USER_DATA_LIMIT", 100)
    with pytest.raises(gpubox.GpuboxError, match="over EC2's 100; nothing was created"):
        gpubox.packed_user_data(gzip.decompress(sent).decode())


@pytest.mark.parametrize("spot", [False, True])
def test_the_instance_request_stops_never_terminates_and_keeps_the_disk_encrypted(aws, capsys, spot):
    session = RecordingSession("run_instances")
    assert gpubox.main([*LAUNCH, *(["--spot"] if spot else [])], session=session) == 0
    (request,) = session.requests
    assert request["InstanceInitiatedShutdownBehavior"] == "stop"  # the idle auto-stop's shutdown stops it
    assert request["MetadataOptions"]["HttpTokens"] == "required"
    (disk,) = request["BlockDeviceMappings"]
    assert disk["Ebs"]["Encrypted"] is True and disk["Ebs"]["VolumeSize"] == 120
    if spot:  # an interruption stops the box and keeps its disk; a one-time request would delete both
        assert request["InstanceMarketOptions"] == {"MarketType": "spot", "SpotOptions": {
            "SpotInstanceType": "persistent", "InstanceInterruptionBehavior": "stop"}}
    else:
        assert "InstanceMarketOptions" not in request


def test_imports_the_learners_own_public_key(aws):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    env, ec2, home = aws
    key = ed25519.Ed25519PrivateKey.generate()
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_ed25519").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()))
    (home / ".ssh" / "id_ed25519.pub").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH))
    result = gpubox_cli(env, *LAUNCH)
    assert result.returncode == 0, result.stderr
    assert "imported your public key" in result.stdout
    assert not (home / ".ssh" / "cnn-course-kit-alice.pem").exists()
    assert "-i " + str(home / ".ssh" / "id_ed25519") in gpubox_cli(env, "ssh", "--box", "alice", "--print").stdout
    assert gpubox_cli(env, "teardown", "--box", "alice", "--yes").returncode == 0
    assert (home / ".ssh" / "id_ed25519").exists()  # the learner's own key is never deleted


def test_ami_from_the_ssm_parameter_when_present(aws, moto_server):
    env, ec2, _ = aws
    ssm = boto3.client("ssm", region_name=REGION, endpoint_url=moto_server)
    ssm.put_parameter(Name="/course-test/dlami/ami-id", Value="ami-0dl0000000000old", Type="String")
    result = gpubox_cli(env, *LAUNCH, "--ami-parameter", "/course-test/dlami/ami-id")
    assert result.returncode == 0, result.stderr
    assert "SSM /course-test/dlami/ami-id" in result.stdout
    assert tagged_instances(ec2)[0]["ImageId"] == "ami-0dl0000000000old"


@pytest.mark.parametrize("bad_ip", ["10.0.0.5", "224.0.0.1", "239.1.2.3", "255.255.255.255", "240.0.0.9"])
def test_bad_ip_is_refused_before_anything_is_created(aws, bad_ip):
    env, ec2, _ = aws
    args = list(LAUNCH)
    args[args.index(MY_IP)] = bad_ip
    result = gpubox_cli(env, *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr  # argparse's refusal, before AWS is asked
    assert result.stderr.strip().splitlines()[-1].endswith(
        f"error: --my-ip {bad_ip} is not a public IPv4 address; SSH is opened to your public IPv4 only. Give it as "
        f"A.B.C.D, or 'auto'.")
    assert tagged_instances(ec2) == [] and ec2.describe_key_pairs()["KeyPairs"] == []


class NoAws:
    """A session that fails the test if any AWS client is made."""
    region_name = REGION

    def client(self, name, region_name=None):
        raise AssertionError(f"AWS was asked ({name}) before the command line was checked")


@pytest.mark.parametrize("args, line", [
    (["--my-ip", "198.51.100.300"], "--my-ip '198.51.100.300' is not an IP address: give your public IPv4 address as "
                                    "A.B.C.D, or 'auto'."),
    (["--repo", "https://learner:ghp_secret@github.com/learner/kit.git"],
     "--repo holds a user name or token (https://USER:TOKEN@...). The box's user data is readable on the box and in "
     "the AWS console: pass --repo with the repository's public https address instead.")])
def test_a_bad_ip_or_a_repo_with_a_token_is_refused_offline_before_aws_is_asked(capsys, args, line):
    for command in (LAUNCH, ("start", "--box", "alice", "--my-ip", MY_IP)):
        if "--repo" in args and command[0] == "start":
            continue  # start takes no --repo
        given = [*command, *args]
        with pytest.raises(SystemExit) as stopped:
            gpubox.main(given, session=NoAws())
        assert stopped.value.code == 2
        assert capsys.readouterr().err.strip().splitlines()[-1].endswith(f"error: {line}")


def test_nothing_happens_without_confirmation(aws):
    env, ec2, _ = aws
    result = gpubox_cli(env, *[a for a in LAUNCH if a != "--yes"])
    assert result.returncode == 1 and "add --yes" in result.stdout
    assert "Estimated cost" in result.stdout  # the price is shown before the question
    assert tagged_instances(ec2) == [] and ec2.describe_key_pairs()["KeyPairs"] == []


def test_teardown_without_confirmation_deletes_nothing(aws):
    env, ec2, home = aws
    assert gpubox_cli(env, *LAUNCH).returncode == 0
    (instance,) = tagged_instances(ec2)
    before = count_everything(ec2), {kind: len(found) for kind, found in tagged_resources(ec2).items()}
    key_file = home / ".ssh" / "cnn-course-kit-alice.pem"
    key = key_file.read_bytes()
    result = gpubox_cli(env, "teardown", "--box", "alice")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Terminate box 'alice' and delete its disk? Not confirmed: add --yes" in result.stdout
    assert "Nothing was deleted." in result.stdout and "terminating" not in result.stdout
    assert (count_everything(ec2), {kind: len(found) for kind, found in tagged_resources(ec2).items()}) == before
    assert [i["State"]["Name"] for i in tagged_instances(ec2)] == [instance["State"]["Name"]]
    assert key_file.read_bytes() == key


@pytest.mark.parametrize("answer, agreed", [("y\n", True), ("\n", False), ("", False)])  # "": Ctrl-D, end of input
def test_the_question_takes_y_and_treats_anything_else_and_ctrl_d_as_no(monkeypatch, capsys, answer, agreed):
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Terminal(answer))
    args = gpubox.parse_args(["teardown", "--box", "alice"])
    assert gpubox.confirm(args, "Terminate box 'alice' and delete its disk?") is agreed
    assert "Terminate box 'alice' and delete its disk? [y/N] " in capsys.readouterr().out


def test_instance_type_not_offered_in_the_region(aws):
    env, ec2, _ = aws
    result = gpubox_cli(env, *LAUNCH, "--instance-type", "g9z.imaginary")
    assert result.returncode == 1 and "Traceback" not in result.stderr and tagged_instances(ec2) == []
    assert result.stderr.strip().splitlines() == [
        "g9z.imaginary is not offered in us-east-1, nor in any other region of your account that answered. Pick "
        "another --instance-type (g4dn.xlarge, the default, g6.xlarge or g5.xlarge)."]


def test_a_type_not_offered_in_the_region_names_the_regions_aws_offers_it_in(aws, capsys):
    """The regions come from AWS (DescribeInstanceTypeOfferings in each), not from a list in the kit."""
    class NotHere(FailingSession):
        def client(self, name, region_name=None):
            made = super().client(name, region_name)
            if name == "ec2" and (region_name or REGION) == REGION:
                made.describe_instance_type_offerings = lambda **kwargs: {"InstanceTypeOfferings": []}
            return made

    env, ec2, _ = aws
    assert gpubox.main(list(LAUNCH), session=NotHere({})) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    offered = re.fullmatch(r"g4dn\.xlarge is not offered in us-east-1\. AWS offers it in ([a-z0-9, -]+): pick one with "
                           r"--region ([a-z0-9-]+) \(say\), or another --instance-type\.", line)
    assert offered, line
    regions = offered.group(1).split(", ")
    assert "us-west-2" in regions and "us-east-1" not in regions and offered.group(2) == regions[0]
    assert tagged_instances(ec2) == []


def launch_as(box):
    """LAUNCH for another box name, given as --box=NAME (so '-x' and '' stay one argument)."""
    args = list(LAUNCH)
    del args[args.index("--box"):args.index("--box") + 2]
    return [*args, f"--box={box}"]


def nothing_created(ec2, before, home):
    return count_everything(ec2) == before and not any((home / ".ssh").glob("cnn-course-kit*"))


@pytest.mark.parametrize("box", ["a/b", ""])
def test_bad_box_name_is_refused_before_anything_is_created(aws, box):
    env, ec2, home = aws
    before = count_everything(ec2)
    result = gpubox_cli(env, *launch_as(box))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"--box '{box}' is not a box name: use 1 to 40 letters" in result.stderr.strip().splitlines()[-1]
    assert nothing_created(ec2, before, home)


@pytest.mark.parametrize("box", ["a b", "-x", "x" * 41, "bücher", "a.b", "a_b"])
def test_box_names_are_letters_digits_and_hyphens(box, capsys):
    with pytest.raises(SystemExit) as stopped:
        gpubox.parse_args(launch_as(box))
    assert stopped.value.code == 2 and "is not a box name" in capsys.readouterr().err
    for good in ("gpubox", "Alice-2", "x" * 40, "7"):
        assert gpubox.parse_args(launch_as(good)).box == good


def test_teardown_still_finds_a_box_named_before_names_were_checked(aws):
    """Earlier versions created a security group and key pair for --box a/b; teardown removes them."""
    env, ec2, _ = aws

    def tags(kind, role, **extra):
        pairs = {"course-kit": "cnn-course-kit", "course-kit:box": "a/b", "course-kit:role": role, **extra}
        return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in pairs.items()]}]

    ec2.create_security_group(GroupName="cnn-course-kit-a/b", Description="old",
                              TagSpecifications=tags("security-group", "firewall"))
    ec2.create_key_pair(KeyName="cnn-course-kit-a/b", TagSpecifications=tags(
        "key-pair", "key", **{"course-kit:key-origin": "created"}))
    result = gpubox_cli(env, "teardown", "--box", "a/b", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    mine = [{"Name": "tag:course-kit:box", "Values": ["a/b"]}]
    assert ec2.describe_security_groups(Filters=mine)["SecurityGroups"] == []
    assert ec2.describe_key_pairs(Filters=mine)["KeyPairs"] == []


@pytest.mark.parametrize("region", ["bad region", "us-east-1 ", "us-east1", "US-EAST-1"])
def test_bad_region_is_refused_before_anything_is_created(aws, region):
    env, ec2, home = aws
    before = count_everything(ec2)
    for args in (("status", "--box", "alice"), LAUNCH):
        result = gpubox_cli(env, *args, "--region", region)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines()[-1].endswith(
            f"error: '{region}' is not an AWS region name (for example us-east-1); check --region")
    assert nothing_created(ec2, before, home)


@pytest.mark.parametrize("region", ["bad region", "us-east1", "US-EAST-1", "us-east"])
def test_bad_region_from_the_aws_config_is_explained_in_one_line(aws, region):
    """botocore takes 'us-east1' and 'US-EAST-1' as region names; the kit checks their form as it does --region's."""
    env, _, _ = aws
    result = gpubox_cli(dict(env, AWS_DEFAULT_REGION=region), "status", "--box", "alice")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"'{region}' is not an AWS region name (for example us-east-1); check --region, "
        "AWS_DEFAULT_REGION or the region in ~/.aws/config."]


@pytest.mark.parametrize("port", ["70000", "65536", "0", "-1"])
def test_local_port_outside_1_to_65535_is_refused(port, capsys):
    with pytest.raises(SystemExit) as stopped:
        gpubox.parse_args(["tunnel", "--print", "--local-port", port])
    err = capsys.readouterr().err
    assert stopped.value.code == 2
    assert err.strip().splitlines()[-1].endswith(
        f"error: --local-port must be a port from 1 to 65535, not {port}; the default is 8888")
    for good in ("1", "8889", "65535"):
        assert gpubox.parse_args(["tunnel", "--local-port", good]).local_port == int(good)


# ---------------------------------------------------- errors injected at the client


def client_error(code, message, operation):
    return aws_errors.ClientError({"Error": {"Code": code, "Message": message}}, operation)


class FailingSession:
    """A boto3 session whose clients talk to moto, except that chosen calls fail."""

    def __init__(self, failures):
        self.failures = failures  # {(service, method): exception}
        self.session = boto3.Session(region_name=REGION)
        self.region_name = REGION

    def client(self, name, region_name=None):
        client = self.session.client(name, region_name=region_name)
        for (service, method), error in self.failures.items():
            if service == name:
                def fail(*args, _error=error, **kwargs):
                    raise _error
                setattr(client, method, fail)
        return client


def run_in_process(capsys, failures, *args):
    code = gpubox.main(list(args), session=FailingSession(failures))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("code, expected", [
    ("VcpuLimitExceeded", ["L-DB2E81BA", "request-service-quota-increase", "--desired-value 4"]),
    ("InsufficientInstanceCapacity", ["no spare g4dn.xlarge capacity", "--instance-type g6.xlarge"]),
    ("UnauthorizedOperation", ["not allowed to call RunInstances", "AmazonEC2FullAccess"]),
    ("InvalidAMIID.NotFound", ["Deep Learning AMI is not available", "--region"]),
])
def test_run_instances_errors_are_explained(aws, capsys, code, expected):
    error = client_error(code, "emulated", "RunInstances")
    status, out, err = run_in_process(capsys, {("ec2", "run_instances"): error}, *LAUNCH)
    assert status == 1
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    for text in expected:
        assert text in err


class NoCapacityIn(FailingSession):
    """Talks to moto, but run_instances finds no capacity in the subnets of `zones`, as AWS says at busy times."""

    def __init__(self, ec2, zones, code="InsufficientInstanceCapacity"):
        super().__init__({})
        self.ec2, self.zones, self.code, self.tried = ec2, zones, code, []

    def client(self, name, region_name=None):
        client = super().client(name, region_name)
        if name == "ec2":
            original = client.run_instances

            def run_instances(**request):
                (subnet,) = self.ec2.describe_subnets(SubnetIds=[request["SubnetId"]])["Subnets"]
                self.tried.append(subnet["AvailabilityZone"])
                if subnet["AvailabilityZone"] in self.zones:
                    raise client_error(self.code, "emulated", "RunInstances")
                return original(**request)
            client.run_instances = run_instances
        return client


@pytest.mark.parametrize("own_vpc", [False, True])
def test_a_zone_without_capacity_is_not_the_end_of_a_launch(aws, capsys, own_vpc):
    env, ec2, _ = aws
    if own_vpc:
        remove_default_vpc(ec2)
    zones = gpubox.check_offered(ec2, "g4dn.xlarge")
    assert len(zones) >= 2, zones
    session = NoCapacityIn(ec2, zones[:1])
    assert gpubox.main(list(LAUNCH), session=session) == 0
    assert session.tried == zones[:2]
    (instance,) = tagged_instances(ec2)
    assert instance["Placement"]["AvailabilityZone"] == zones[1]
    assert f"no spare g4dn.xlarge capacity in {zones[0]} now (InsufficientInstanceCapacity); trying {zones[1]}" in \
        capsys.readouterr().out
    if own_vpc:  # a subnet of its own in each zone, each with public addresses and the route out
        subnets = ec2.describe_subnets(Filters=[{"Name": "tag:course-kit:box", "Values": ["alice"]}])["Subnets"]
        assert sorted(s["AvailabilityZone"] for s in subnets) == zones
        assert all(s["MapPublicIpOnLaunch"] for s in subnets) and len({s["CidrBlock"] for s in subnets}) == len(zones)
        (table,) = ec2.describe_route_tables(Filters=[{"Name": "tag:course-kit:box", "Values": ["alice"]}])["RouteTables"]
        assert sorted(a["SubnetId"] for a in table["Associations"]) == sorted(s["SubnetId"] for s in subnets)
        ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
        assert gpubox.main(list(LAUNCH), session=FailingSession({})) == 0  # again: no subnet made twice
        assert len(ec2.describe_subnets(Filters=[{"Name": "tag:course-kit:box", "Values": ["alice"]}])["Subnets"]) \
            == len(zones)
        down = gpubox_cli(env, "teardown", "--box", "alice", "--yes")
        assert down.returncode == 0, down.stdout + down.stderr
        assert tagged_resources(ec2) == {}


@pytest.mark.parametrize("code", ["InsufficientSpotCapacity", "UnfulfillableCapacity"])
def test_no_capacity_in_any_zone_is_one_line_after_trying_each(aws, capsys, code):
    env, ec2, _ = aws
    zones = gpubox.check_offered(ec2, "g4dn.xlarge")
    session = NoCapacityIn(ec2, zones, code=code)
    assert gpubox.main([*LAUNCH, "--spot"], session=session) == 1
    assert sorted(session.tried) == zones
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert f"in any of the zones launch tried ({', '.join(session.tried)}) ({code})" in err
    assert tagged_instances(ec2) == []


def test_only_zones_with_a_default_subnet_are_tried_and_the_others_are_named(aws, capsys):
    env, ec2, _ = aws
    zones = gpubox.check_offered(ec2, "g4dn.xlarge")
    (default,) = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [default["VpcId"]]}])["Subnets"]:
        if subnet["AvailabilityZone"] != zones[0]:
            ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    session = NoCapacityIn(ec2, zones)
    assert gpubox.main(list(LAUNCH), session=session) == 1
    assert session.tried == zones[:1]
    captured = capsys.readouterr()
    assert f"the default VPC has no subnet in {', '.join(zones[1:])}" in captured.out
    assert f"create-default-subnet --availability-zone {zones[1]}" in captured.out
    assert "the VPC console's Subnets > Actions > Create default subnet adds one, or `aws ec2" in captured.out
    assert f"in any of the zones launch tried ({zones[0]})" in captured.err


def test_a_stopped_box_without_capacity_in_its_zone_is_told_to_start_again(aws, capsys):
    env, ec2, _ = aws
    assert gpubox_cli(env, *LAUNCH).returncode == 0
    assert gpubox_cli(env, "stop", "--box", "alice").returncode == 0
    error = client_error("InsufficientInstanceCapacity", "emulated", "StartInstances")
    status, _, err = run_in_process(capsys, {("ec2", "start_instances"): error}, "start", "--box", "alice",
                                    "--my-ip", MY_IP)
    assert status == 1 and len(err.strip().splitlines()) == 1
    assert "starts only in its own zone" in err and "run start again" in err
    assert "None" not in err and "any of the zones" not in err


@pytest.mark.parametrize("code, message", [
    ("IncorrectSpotRequestState", "emulated"),
    ("UnsupportedOperation", "Only Amazon EC2 can restart an interrupted stopped Spot Instance.")])
def test_a_spot_box_stopped_by_aws_is_explained_with_what_a_forced_teardown_loses(aws, capsys, code, message):
    env, ec2, _ = aws
    assert gpubox_cli(env, *LAUNCH, "--spot").returncode == 0
    ec2.stop_instances(InstanceIds=[tagged_instances(ec2)[0]["InstanceId"]])  # as an interruption leaves it
    error = client_error(code, message, "StartInstances")
    status, _, err = run_in_process(capsys, {("ec2", "start_instances"): error}, "start", "--box", "alice",
                                    "--my-ip", MY_IP)
    assert status == 1 and "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert line.startswith(f"AWS refused to start this spot box ({code}): AWS stopped it (a spot interruption), and "
                           f"only AWS can start it again")
    assert "`teardown --force` would delete it with every run, edited lesson and exercise not yet synced" in line
    assert "AWS refused StartInstances" not in line


def test_a_price_too_low_is_not_tried_in_another_zone(aws, capsys):
    env, ec2, _ = aws
    session = NoCapacityIn(ec2, gpubox.check_offered(ec2, "g4dn.xlarge"), code="SpotMaxPriceTooLow")
    assert gpubox.main([*LAUNCH, "--spot"], session=session) == 1
    assert len(session.tried) == 1 and "any zone" not in capsys.readouterr().err


def test_times_the_kit_states_are_estimates_with_their_basis_or_not_stated(aws, capsys):
    """How long the box installs is not measured: said as an estimate, with what it is based on. How long AWS takes
    to approve a quota has no source here: not said at all."""
    env, ec2, _ = aws
    launched = gpubox_cli(env, *LAUNCH)
    assert launched.returncode == 0, launched.stderr
    assert ("the box installs the course by itself after it boots: about 10 minutes, an estimate (not measured) for "
            "what it installs, TensorFlow with NVIDIA's CUDA libraries the largest part") in launched.stdout
    error = client_error("VcpuLimitExceeded", "emulated", "RunInstances")
    _, _, err = run_in_process(capsys, {("ec2", "run_instances"): error}, *LAUNCH[:2], "bob", *LAUNCH[3:])
    assert "minutes to a day" not in err and "That page shows the request's status" in err
    session = answering_session(FailingSession({}), "service-quotas", "get_service_quota", {"Quota": {"Value": 0.0}})
    assert gpubox.main(list(LAUNCH[:2]) + ["carol"] + list(LAUNCH[3:]), session=session) == 1
    err = capsys.readouterr().err
    assert "minutes to a day" not in err and "That page shows the request's status; nothing was created." in err
    source = SCRIPT.read_text()
    assert "us-east-1, us-west-2 and eu-west-1" not in source and "minutes to a day" not in source


def test_spot_quota_error_names_the_spot_quota(aws, capsys):
    error = client_error("MaxSpotInstanceCountExceeded", "emulated", "RunInstances")
    status, _, err = run_in_process(capsys, {("ec2", "run_instances"): error}, *LAUNCH, "--spot")
    assert status == 1 and "L-3819A6DF" in err


def answering_session(session, service, method, answer):
    """Makes `session`'s `service` clients answer `method` with `answer`."""
    original = session.client

    def client(name, region_name=None):
        made = original(name, region_name)
        if name == service:
            setattr(made, method, lambda **kwargs: answer)
        return made

    session.client = client
    return session


def test_zero_quota_stops_before_anything_is_created(aws, capsys):
    env, ec2, _ = aws
    session = answering_session(FailingSession({}), "service-quotas", "get_service_quota",
                                {"Quota": {"Value": 0.0}})
    assert gpubox.main(list(LAUNCH), session=session) == 1
    err = capsys.readouterr().err
    assert "allows 0 vCPUs" in err and "needs 4" in err and "L-DB2E81BA" in err
    assert tagged_instances(ec2) == [] and ec2.describe_security_groups(
        Filters=[{"Name": "tag:course-kit:box", "Values": ["alice"]}])["SecurityGroups"] == []


@pytest.mark.parametrize("default", [0.0, 64.0])
def test_aws_default_quota_is_a_warning_that_says_whose_it_is_never_an_ok(aws, capsys, default):
    """GetServiceQuota refused (the user lacks servicequotas:GetServiceQuota): AWS's default for the quota is not the
    account's, so it neither passes the check nor stops the launch."""
    session = answering_session(
        FailingSession({("service-quotas", "get_service_quota"): client_error(
            "AccessDeniedException", "emulated", "GetServiceQuota")}),
        "service-quotas", "get_aws_default_service_quota", {"Quota": {"Value": default}})
    assert gpubox.main(list(LAUNCH), session=session) == 0
    out = capsys.readouterr().out
    assert "OK    vCPU quota" not in out
    assert (f"WARN  could not read your account's vCPU quota L-DB2E81BA (AccessDeniedException); AWS's default for it "
            f"is {default:g}, not necessarily your account's (this box needs 4): see yours at "
            f"https://us-east-1.console.aws.amazon.com/servicequotas/home/services/ec2/quotas/L-DB2E81BA "
            f"('Applied account-level quota value')\n") in out


@pytest.mark.parametrize("instance_type, spot, quota, family, vcpus", [
    ("g4dn.xlarge", False, "L-DB2E81BA", "G and VT", 4), ("g4dn.xlarge", True, "L-3819A6DF", "G and VT", 4),
    ("p4d.24xlarge", False, "L-417A185B", "P", 96), ("p4d.24xlarge", True, "L-7212CCBC", "P", 96)])
def test_each_gpu_family_is_checked_against_its_own_quota(aws, capsys, instance_type, spot, quota, family, vcpus):
    asked = []
    session = FailingSession({})
    original = session.client

    def client(name, region_name=None):
        made = original(name, region_name)
        if name == "service-quotas":
            def get_service_quota(**request):
                asked.append(request["QuotaCode"])
                return {"Quota": {"Value": 0.0}}
            made.get_service_quota = get_service_quota
        return made

    session.client = client
    args = [*LAUNCH, "--instance-type", instance_type, *(["--spot"] if spot else [])]
    assert gpubox.main(args, session=session) == 1
    err = capsys.readouterr().err
    assert asked == [quota] and f"quota {quota} allows 0 vCPUs of {family} instances" in err and f"needs {vcpus}" in err
    error = client_error("VcpuLimitExceeded", "emulated", "RunInstances")
    status, _, err = run_in_process(capsys, {("ec2", "run_instances"): error}, *args)  # moto has no quota: WARN
    assert status == 1 and f"more vCPUs of {family} instances in us-east-1 (quota {quota};" in err


@pytest.mark.parametrize("instance_type", ["t3.micro", "inf2.xlarge", "vt1.3xlarge", "G4DN.XLARGE", "g4dn"])
def test_an_instance_type_without_an_nvidia_gpu_quota_the_kit_knows_is_refused(instance_type, capsys):
    with pytest.raises(SystemExit) as stopped:
        gpubox.parse_args([*LAUNCH, "--instance-type", instance_type])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
        f"error: --instance-type {instance_type} is not a G or P instance type (the GPU families whose vCPU quota "
        f"the kit checks): use g4dn.xlarge (the default), g6.xlarge or g5.xlarge")
    for good in ("g4dn.xlarge", "g6e.2xlarge", "p3.2xlarge", "p4d.24xlarge"):
        assert gpubox.parse_args([*LAUNCH, "--instance-type", good]).instance_type == good


# What AWS's DescribeInstanceTypes answers for them: g4ad.xlarge's GPU is AMD's (moto does not know the type), and
# g5g.xlarge's NVIDIA T4g sits beside ARM processors (moto's own answer, as AWS's).
AMD_GPU = {"InstanceTypes": [{"InstanceType": "g4ad.xlarge", "VCpuInfo": {"DefaultVCpus": 4},
                              "ProcessorInfo": {"SupportedArchitectures": ["x86_64"]},
                              "GpuInfo": {"Gpus": [{"Name": "Radeon Pro V520", "Manufacturer": "AMD", "Count": 1}]}}]}


@pytest.mark.parametrize("instance_type, reason", [
    ("g4ad.xlarge", "g4ad.xlarge has GPUs made by AMD, not an NVIDIA GPU, which the kit's AMI and TensorFlow need"),
    ("g5g.xlarge", "g5g.xlarge has arm64 processors, not x86_64, which the kit's AMI is built for")])
def test_a_g_type_without_an_nvidia_gpu_or_x86_processors_is_refused_before_anything_is_created(
        aws, capsys, instance_type, reason):
    env, ec2, home = aws
    before = count_everything(ec2)
    session = FailingSession({})
    if instance_type == "g4ad.xlarge":
        session = answering_session(session, "ec2", "describe_instance_types", AMD_GPU)
        session = answering_session(session, "ec2", "describe_instance_type_offerings", {"InstanceTypeOfferings": [
            {"InstanceType": "g4ad.xlarge", "LocationType": "availability-zone", "Location": "us-east-1a"}]})
    assert gpubox.main([*LAUNCH, "--instance-type", instance_type], session=session) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (f"{reason}: use --instance-type g4dn.xlarge (the default), g6.xlarge or g5.xlarge; "
                    f"nothing was created.")
    assert nothing_created(ec2, before, home)


def test_missing_credentials_are_explained(aws, capsys):
    status, _, err = run_in_process(
        capsys, {("sts", "get_caller_identity"): aws_errors.NoCredentialsError()}, *LAUNCH)
    assert status == 1 and "No AWS credentials were found" in err and "aws configure" not in err
    assert "never for the root account" in err and "~/.aws/credentials with mode 600, not on a command line" in err


@pytest.mark.parametrize("code", ["InvalidClientTokenId", "AuthFailure", "ExpiredToken"])
def test_a_refused_key_is_checked_in_the_console_first(aws, capsys, code):
    """The kit does not install the AWS CLI: its advice starts from the console, not from `aws ...` commands."""
    status, _, err = run_in_process(capsys, {("sts", "get_caller_identity"): client_error(
        code, "emulated", "GetCallerIdentity")}, *LAUNCH)
    assert status == 1 and len(err.strip().splitlines()) == 1
    assert err.startswith(f"AWS did not accept your credentials ({code}). In the AWS console (IAM > Users > your "
                          f"user > Security credentials)")
    assert "aws configure" not in err and "aws sts" not in err


def test_missing_credentials_for_real_in_a_subprocess(aws):
    env, _, _ = aws
    env = {k: v for k, v in env.items() if not k.startswith("AWS_ACCESS") and not k.startswith("AWS_SECRET")}
    result = gpubox_cli(env, "status", "--box", "alice")
    assert result.returncode == 1 and "No AWS credentials were found" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_two_optional_rights_are_optional_and_the_readme_grants_them_with_an_inline_policy(aws, capsys):
    """setup/README.md calls ssm:GetParameter and servicequotas:GetServiceQuota optional: without them launch still
    creates the box (the AMI from DescribeImages, the quota a WARN), and the README's policy grants exactly them."""
    env, ec2, _ = aws
    denied = {(service, method): client_error("AccessDeniedException", "emulated", operation) for service, method,
              operation in (("ssm", "get_parameter", "GetParameter"),
                            ("service-quotas", "get_service_quota", "GetServiceQuota"),
                            ("service-quotas", "get_aws_default_service_quota", "GetAWSDefaultServiceQuota"))}
    assert gpubox.main(list(LAUNCH), session=FailingSession(denied)) == 0
    out = capsys.readouterr().out
    assert "WARN  could not read your vCPU quota L-DB2E81BA" in out and "newest image named" in out
    assert tagged_instances(ec2)[0]["ImageId"] == NEWEST_AMI
    readme = (ROOT / "setup" / "README.md").read_text()
    (policy,) = re.findall(r"```json\n(.*?)```", readme, re.S)
    (statement,) = json.loads(policy)["Statement"]
    assert statement == {"Effect": "Allow", "Action": ["ssm:GetParameter", "servicequotas:GetServiceQuota"],
                         "Resource": "*"}
    assert "Create inline policy > JSON" in readme and "Two more rights are optional" in readme


def test_no_ami_found_is_explained(aws, capsys):
    not_found = client_error("ParameterNotFound", "emulated", "GetParameter")
    session = answering_session(FailingSession({("ssm", "get_parameter"): not_found}),
                                "ec2", "describe_images", {"Images": []})
    assert gpubox.main(list(LAUNCH), session=session) == 1
    err = capsys.readouterr().err
    assert "No AWS Deep Learning Base GPU AMI was found" in err and "--region" in err


def test_price_table_is_dated_and_spot_price_comes_from_history():
    assert datetime.date.fromisoformat(gpubox.PRICES_CHECKED)
    ec2 = boto3.client("ec2", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x",
                       endpoint_url="http://127.0.0.1:9")
    stubber = Stubber(ec2)
    stubber.add_response("describe_spot_price_history", {"SpotPriceHistory": [
        {"SpotPrice": "0.2104", "AvailabilityZone": "us-east-1a"},
        {"SpotPrice": "0.1950", "AvailabilityZone": "us-east-1b"}]})
    with stubber:
        hourly, source = gpubox.price_per_hour(ec2, "g4dn.xlarge", spot=True)
    assert hourly == pytest.approx(0.1950) and "spot" in source
    hourly, source = gpubox.price_per_hour(ec2, "g4dn.xlarge", spot=False)
    assert hourly == gpubox.ON_DEMAND_USD_PER_HOUR["g4dn.xlarge"] and gpubox.PRICES_CHECKED in source


@pytest.mark.parametrize("region", ["us-east-1", "sa-east-1"])
def test_outside_us_east_1_the_price_says_whose_it_is_and_where_to_see_the_regions(capsys, region):
    import types

    ec2 = types.SimpleNamespace(meta=types.SimpleNamespace(region_name=region))
    assert gpubox.show_price(ec2, "g4dn.xlarge", False, 100) == 0.526
    out = capsys.readouterr().out
    assert f"on-demand us-east-1 list price checked {gpubox.PRICES_CHECKED}" in out and "30%" not in out
    note = (f"  prices differ by region, and the list prices above are us-east-1's (checked {gpubox.PRICES_CHECKED}): "
            f"see {region}'s on https://aws.amazon.com/ec2/pricing/on-demand/")
    assert (note in out) == (region != "us-east-1")


def test_a_spot_box_goes_to_the_zone_whose_price_is_quoted(aws, capsys):
    env, ec2, _ = aws
    history = {"SpotPriceHistory": [{"SpotPrice": price, "AvailabilityZone": zone} for zone, price in (
        ("us-east-1a", "0.2600"), ("us-east-1b", "0.2400"), ("us-east-1d", "0.1900"), ("us-east-1f", "0.2100"))]}
    session = answering_session(FailingSession({}), "ec2", "describe_spot_price_history", history)
    assert gpubox.main([*LAUNCH, "--spot"], session=session) == 0
    assert "g4dn.xlarge $0.1900" in capsys.readouterr().out
    (instance,) = tagged_instances(ec2)
    assert instance["Placement"]["AvailabilityZone"] == "us-east-1d"


def test_spot_box_is_persistent_stops_on_interruption_and_tears_down(aws):
    env, ec2, _ = aws
    result = gpubox_cli(env, *LAUNCH, "--spot")
    assert result.returncode == 0, result.stderr
    assert "spot, now" in result.stdout  # the spot price from the price history
    (instance,) = tagged_instances(ec2)
    assert instance.get("InstanceLifecycle") == "spot"
    assert "(spot)" in gpubox_cli(env, "status", "--box", "alice").stdout
    down = gpubox_cli(env, "teardown", "--box", "alice", "--yes")
    assert down.returncode == 0, down.stdout + down.stderr
    assert tagged_resources(ec2) == {}


def spot_session(calls, running_is="running"):
    """A session whose EC2 shows each instance with a spot request, a running one as `running_is` ("running" or
    "shutting-down"), and records in `calls` the cancel and terminate calls (moto records no spot request for
    run_instances)."""
    session = FailingSession({})
    original = session.client

    def client(name, region_name=None):
        made = original(name, region_name)
        if name == "ec2":
            describe, terminate = made.describe_instances, made.terminate_instances

            def describe_with_request(**kwargs):
                answer = describe(**kwargs)
                for reservation in answer["Reservations"]:
                    for instance in reservation["Instances"]:
                        instance["SpotInstanceRequestId"] = "sir-course01"
                        if running_is == "shutting-down" and instance["State"]["Name"] == "running":
                            instance["State"] = {"Code": 32, "Name": "shutting-down"}
                return answer

            made.describe_instances = describe_with_request
            made.cancel_spot_instance_requests = lambda **kw: calls.append(("cancel", kw))
            made.terminate_instances = lambda **kw: (calls.append(("terminate", kw)), terminate(**kw))[1]
        return made

    session.client = client
    return session


def test_teardown_cancels_the_persistent_spot_request_first(aws, capsys):
    """moto does not record spot requests for run_instances, so the request id is
    added to what describe_instances returns and the cancel call is recorded."""
    env, ec2, _ = aws
    assert gpubox_cli(env, *LAUNCH, "--spot").returncode == 0
    calls = []
    session = spot_session(calls)
    assert gpubox.main(["teardown", "--box", "alice", "--yes"], session=session) == 0
    assert calls[0] == ("cancel", {"SpotInstanceRequestIds": ["sir-course01"]})
    assert calls[1][0] == "terminate"


def test_disk_smaller_than_the_amis_own_is_refused(aws, capsys):
    env, ec2, _ = aws
    session = FailingSession({})
    original = session.client

    def client(name, region_name=None):
        made = original(name, region_name)
        if name == "ec2":
            describe = made.describe_images

            def with_big_root(**kwargs):
                answer = describe(**kwargs)
                for image in answer["Images"]:
                    image["BlockDeviceMappings"] = [{"DeviceName": image["RootDeviceName"],
                                                     "Ebs": {"VolumeSize": 150}}]
                return answer

            made.describe_images = with_big_root
        return made

    session.client = client
    assert gpubox.main(list(LAUNCH), session=session) == 1
    err = capsys.readouterr().err
    assert "--disk-gb 120 is smaller than the AMI's own disk (150 GB)" in err
    assert tagged_instances(ec2) == []


def test_repo_url_defaults_to_an_https_origin(tmp_path, monkeypatch):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    monkeypatch.setattr(gpubox, "KIT_ROOT", tmp_path)
    with pytest.raises(gpubox.GpuboxError, match="Pass --repo"):
        gpubox.course_repo(None)
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin",
                    "git@github.com:learner/cnn-course-kit.git"], check=True)
    assert gpubox.course_repo(None) == "https://github.com/learner/cnn-course-kit.git"
    assert gpubox.course_repo("https://example.org/kit.git") == "https://example.org/kit.git"


# ---------------------------------------------------- sync, and a teardown that loses nothing

LESSON = "models/03_cnn_from_scratch"


def put(folder, relative, text):
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def box_run(env, name, lesson=LESSON):
    """A finished run in the box's kit folder, as utils.runs writes it."""
    box = pathlib.Path(env["GPUBOX_TEST_BOX_HOME"]) / "cnn-course-kit"
    put(box, f"{lesson}/runs/{name}/model.keras", f"weights of {name}")
    put(box, f"{lesson}/runs/{name}/finished.json", json.dumps({"mode": "full", "score": 0.9}))
    put(box, f"{lesson}/runs.json", json.dumps({"latest": f"runs/{name}"}))
    return box


def test_sync_copies_the_boxs_runs_and_never_overwrites_a_local_file(aws, tmp_path):
    env, ec2, home = aws
    assert gpubox_cli(env, *LAUNCH).returncode == 0
    box = box_run(env, "20261201-100000-full")
    put(box, f"{LESSON}/metrics.json", "the box's latest metrics")
    put(box, "build/lessons/03_cnn_from_scratch.ipynb", "the same executed copy")
    local = tmp_path / "local"
    mine = put(local, f"{LESSON}/metrics.json", "my latest metrics")
    my_index = put(local, f"{LESSON}/runs.json", json.dumps({"latest": "runs/20261130-090000-sample"}))
    put(local, f"{LESSON}/runs/20261130-090000-sample/finished.json", "{}")
    put(local, "build/lessons/03_cnn_from_scratch.ipynb", "the same executed copy")

    result = gpubox_cli(env, "sync", "--box", "alice", "--into", str(local))
    assert result.returncode == 0, result.stdout + result.stderr
    run = local / LESSON / "runs" / "20261201-100000-full"
    assert (run / "model.keras").read_text() == "weights of 20261201-100000-full"
    assert (run / "finished.json").is_file()
    assert mine.read_text() == "my latest metrics"  # never overwritten...
    assert (local / LESSON / "metrics.from-alice.json").read_text() == "the box's latest metrics"  # ...nor lost
    assert "kept yours: models/03_cnn_from_scratch/metrics.json" in result.stdout
    assert not (local / "build/lessons/03_cnn_from_scratch.from-alice.ipynb").exists()  # identical: no copy
    assert not my_index.exists()  # the box's index is not copied; the local one is moved aside, not deleted
    (aside,) = (local / LESSON).glob("runs.json.before-sync-*")
    assert json.loads(aside.read_text()) == {"latest": "runs/20261130-090000-sample"}
    record = json.loads((home / ".ssh" / "cnn-course-kit-alice.sync.json").read_text())
    assert record["instance_id"] == tagged_instances(ec2)[0]["InstanceId"]
    assert f"{LESSON}/runs/20261201-100000-full/model.keras" in record["files"]
    assert "never" not in gpubox_cli(env, "status", "--box", "alice").stdout.split("synced", 1)[1]

    again = gpubox_cli(env, "sync", "--box", "alice", "--into", str(local))
    assert again.returncode == 0 and "0 new files copied" in again.stdout
    assert sorted(p.name for p in (local / LESSON).glob("metrics*")) == ["metrics.from-alice.json", "metrics.json"]


def test_teardown_refuses_while_the_box_holds_runs_that_were_never_synced(aws, tmp_path):
    env, ec2, _ = aws
    assert gpubox_cli(env, *LAUNCH).returncode == 0
    box_run(env, "20261201-100000-full")
    into = ("--into", str(tmp_path / "local"))

    refused = gpubox_cli(env, "teardown", "--box", "alice", "--yes")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert line == ("Box 'alice' holds 1 run not yet copied to this machine (never synced): run "
                    "`.venv/bin/python setup/gpubox.py sync --box alice` first, or add --force to delete them with "
                    "the box.")
    assert f"{LESSON}/runs/20261201-100000-full   NOT SYNCED" in refused.stdout
    assert len(tagged_instances(ec2)) == 1

    assert gpubox_cli(env, "sync", "--box", "alice", *into).returncode == 0
    box_run(env, "20261201-120000-full")  # a new run after the sync
    refused = gpubox_cli(env, "teardown", "--box", "alice", "--yes")
    assert refused.returncode == 1 and "holds 1 run not yet copied to this machine (last synced 20" in refused.stderr
    assert "20261201-100000-full\n" in refused.stdout and "20261201-120000-full   NOT SYNCED" in refused.stdout

    assert gpubox_cli(env, "sync", "--box", "alice", *into).returncode == 0
    box = put(pathlib.Path(env["GPUBOX_TEST_BOX_HOME"]), "cnn-course-kit/x", "").parent
    put(box, "build/lessons/04_vgg16_finetune.ipynb", "an executed lesson: in no run folder")
    refused = gpubox_cli(env, "teardown", "--box", "alice", "--yes")
    assert refused.returncode == 1 and "holds 1 file not yet copied to this machine" in refused.stderr
    put(box, f"{LESSON}/runs/20261201-100000-full/model.keras", "weights changed on the box after the sync")
    refused = gpubox_cli(env, "teardown", "--box", "alice", "--yes")
    assert refused.returncode == 1 and "holds 1 run and 1 other file not yet copied to this machine" in refused.stderr
    assert "20261201-100000-full   NOT SYNCED" in refused.stdout and len(tagged_instances(ec2)) == 1
    assert "build/lessons/04_vgg16_finetune.ipynb   NOT SYNCED" in refused.stdout

    assert gpubox_cli(env, "sync", "--box", "alice", *into).returncode == 0
    down = gpubox_cli(env, "teardown", "--box", "alice", "--yes")
    assert down.returncode == 0, down.stdout + down.stderr
    assert "holds 2 runs" in down.stdout and "NOT SYNCED" not in down.stdout
    assert tagged_instances(ec2) == []
    assert (tmp_path / "local" / LESSON / "runs" / "20261201-120000-full" / "model.keras").is_file()


def box_git(box, *args):
    subprocess.run(["git", "-C", str(box), "-c", "user.name=kit", "-c", "user.email=kit@example.invalid", *args],
                   check=True)


def box_kit_checkout(env):
    """The box's kit folder as bootstrap.sh leaves it: a git clone, here of four lessons."""
    kit = pathlib.Path(env["GPUBOX_TEST_BOX_HOME"]).parent / "kit-origin"
    for lesson in ("01_convolution_filters", "02_fc_vs_cnn", "03_cnn_from_scratch", "04_vgg16_finetune"):
        put(kit, f"notebooks/{lesson}.ipynb", f"{lesson} as the kit has it")
    put(kit, ".gitignore", ".ipynb_checkpoints/\n")
    box_git(kit, "init", "-q")
    box_git(kit, "add", ".")
    box_git(kit, "commit", "-q", "-m", "the kit")
    box = pathlib.Path(env["GPUBOX_TEST_BOX_HOME"]) / "cnn-course-kit"
    subprocess.run(["git", "clone", "-q", str(kit), str(box)], check=True)
    return box


def test_sync_brings_back_the_lessons_edited_on_the_box_and_the_exercises_and_teardown_waits_for_them(aws, tmp_path):
    """JupyterLab on the box opens the whole kit: a learner edits its lessons there and works in build/exercises."""
    env, ec2, _ = aws
    assert gpubox_cli(env, *LAUNCH).returncode == 0
    box = box_kit_checkout(env)
    unchanged = gpubox_cli(env, "teardown", "--box", "alice", "--yes")  # the kit's own lessons are nobody's work
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
    assert "NOT SYNCED" not in unchanged.stdout
    assert gpubox_cli(env, *LAUNCH).returncode == 0
    put(box, "notebooks/01_convolution_filters.ipynb", "lesson 1 with the learner's answers")
    put(box, "notebooks/02_fc_vs_cnn.ipynb", "lesson 2, edited and staged")
    box_git(box, "add", "notebooks/02_fc_vs_cnn.ipynb")
    put(box, "notebooks/03_cnn_from_scratch.ipynb", "lesson 3, edited and committed on the box")
    box_git(box, "commit", "-q", "-m", "my lesson 3", "notebooks/03_cnn_from_scratch.ipynb")
    put(box, "notebooks/my_experiment.ipynb", "a notebook the learner made")
    put(box, "notebooks/.ipynb_checkpoints/my_experiment-checkpoint.ipynb", "JupyterLab's autosave")
    put(box, "build/exercises/03_cnn_from_scratch.ipynb", "exercise 3, half done")

    refused = gpubox_cli(env, "teardown", "--box", "alice", "--yes")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("Box 'alice' holds 5 files not yet copied to this machine (never synced)")
    for path in ("notebooks/01_convolution_filters.ipynb", "notebooks/02_fc_vs_cnn.ipynb",
                 "notebooks/03_cnn_from_scratch.ipynb", "notebooks/my_experiment.ipynb",
                 "build/exercises/03_cnn_from_scratch.ipynb"):
        assert f"  {path}   NOT SYNCED" in refused.stdout
    assert "04_vgg16_finetune" not in refused.stdout and "checkpoint" not in refused.stdout

    local = tmp_path / "local"
    mine = put(local, "notebooks/01_convolution_filters.ipynb", "lesson 1 as the kit has it")
    synced = gpubox_cli(env, "sync", "--box", "alice", "--into", str(local))
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert mine.read_text() == "lesson 1 as the kit has it"  # never overwritten...
    assert (local / "notebooks/01_convolution_filters.from-alice.ipynb").read_text() == \
        "lesson 1 with the learner's answers"  # ...and the box's beside it
    assert (local / "notebooks/my_experiment.ipynb").read_text() == "a notebook the learner made"
    assert (local / "notebooks/02_fc_vs_cnn.ipynb").read_text() == "lesson 2, edited and staged"
    assert (local / "notebooks/03_cnn_from_scratch.ipynb").read_text() == "lesson 3, edited and committed on the box"
    assert (local / "build/exercises/03_cnn_from_scratch.ipynb").read_text() == "exercise 3, half done"
    assert not (local / "notebooks/04_vgg16_finetune.ipynb").exists()  # the kit's, unchanged: not the learner's work
    assert not (local / "notebooks/.ipynb_checkpoints").exists()
    assert "4 files of notebooks/ changed or added on the box" in synced.stdout

    put(box, "notebooks/my_experiment.ipynb", "edited again after the sync")
    refused = gpubox_cli(env, "teardown", "--box", "alice", "--yes")
    assert refused.returncode == 1 and "holds 1 file not yet copied" in refused.stderr
    assert gpubox_cli(env, "sync", "--box", "alice", "--into", str(local)).returncode == 0
    assert (local / "notebooks/my_experiment.ipynb").read_text() == "a notebook the learner made"
    assert (local / "notebooks/my_experiment.from-alice.ipynb").read_text() == "edited again after the sync"
    down = gpubox_cli(env, "teardown", "--box", "alice", "--yes")
    assert down.returncode == 0, down.stdout + down.stderr
    assert tagged_instances(ec2) == []


def test_teardown_force_deletes_a_box_with_runs_that_were_never_synced(aws):
    env, ec2, _ = aws
    assert gpubox_cli(env, *LAUNCH).returncode == 0
    box_run(env, "20261201-100000-full")
    down = gpubox_cli(env, "teardown", "--box", "alice", "--yes", "--force")
    assert down.returncode == 0, down.stdout + down.stderr
    assert "NOT SYNCED" in down.stdout and "--force" in down.stdout
    assert tagged_instances(ec2) == []


def test_teardown_cannot_check_a_stopped_or_unreachable_box_and_says_so(aws, tmp_path):
    env, ec2, _ = aws
    assert gpubox_cli(env, *LAUNCH).returncode == 0
    unreachable = dict(env, GPUBOX_TEST_BOX_HOME=str(tmp_path / "gone"))
    refused = gpubox_cli(unreachable, "teardown", "--box", "alice", "--yes")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("Box 'alice' did not answer over SSH, so teardown cannot check") and "--force" in line

    assert gpubox_cli(env, "stop", "--box", "alice").returncode == 0
    refused = gpubox_cli(env, "teardown", "--box", "alice", "--yes")
    assert refused.returncode == 1
    (line,) = refused.stderr.strip().splitlines()
    assert line == ("Box 'alice' is stopped, so teardown cannot check which runs on it are not yet on this "
                    "machine: start it (`.venv/bin/python setup/gpubox.py start --box alice`) and run "
                    "`.venv/bin/python setup/gpubox.py sync --box alice`, or add --force to delete it unchecked.")
    down = gpubox_cli(env, "teardown", "--box", "alice", "--yes", "--force")
    assert down.returncode == 0, down.stdout + down.stderr
    assert tagged_instances(ec2) == []


def test_teardown_again_while_the_box_is_shutting_down_finishes_the_job(aws, capsys):
    """Ctrl-C during teardown's wait leaves a box AWS is already deleting ("safe to repeat", says the message):
    the second teardown must not ask to start it and sync, but go on deleting what is left."""
    env, ec2, _ = aws
    assert gpubox_cli(env, *LAUNCH, "--spot").returncode == 0
    box_run(env, "20261201-100000-full")  # never synced: it would stop a teardown of a running box
    calls = []
    session = spot_session(calls, running_is="shutting-down")  # what AWS answers between terminate and terminated
    assert gpubox.main(["teardown", "--box", "alice", "--yes"], session=session) == 0
    out = capsys.readouterr().out
    assert "box 'alice' is already being deleted (shutting-down)" in out and "Nothing tagged" in out
    assert [call[0] for call in calls] == ["cancel", "terminate"]
    assert tagged_resources(ec2) == {}


def test_ssh_and_rsync_keep_the_boxs_host_key_under_its_instance_id_and_teardown_forgets_it(aws, tmp_path):
    """AWS hands a new box an address an old box had: a host key stored under the address would fail
    "Host key verification failed", so ssh, and rsync through it, keep it under the instance id, in the box's file."""
    env, ec2, home = aws
    assert gpubox_cli(env, *LAUNCH).returncode == 0
    instance_id = tagged_instances(ec2)[0]["InstanceId"]
    known_hosts = home / ".ssh" / "cnn-course-kit-alice.known_hosts"
    options = f"-o HostKeyAlias={instance_id} -o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=accept-new"
    assert options in gpubox_cli(env, "ssh", "--box", "alice", "--print").stdout
    log = tmp_path / "ssh-calls"
    logging_ssh = tmp_path / "logging-ssh"
    logging_ssh.write_text(f'#!/bin/sh\nprintf "%s\\0" "$*" >> "{log}"\nexec "{env["GPUBOX_SSH"]}" "$@"\n')
    logging_ssh.chmod(0o755)
    box_run(env, "20261201-100000-full")
    synced = gpubox_cli(dict(env, GPUBOX_SSH=str(logging_ssh)), "sync", "--box", "alice", "--into", str(tmp_path / "l"))
    assert synced.returncode == 0, synced.stdout + synced.stderr
    calls = log.read_text().split("\0")[:-1]
    assert any("rsync --server" in call for call in calls) and all(options in call for call in calls), calls
    known_hosts.write_text(f"{instance_id} ssh-ed25519 AAAA\n")  # what ssh stored at the first connection
    down = gpubox_cli(env, "teardown", "--box", "alice", "--yes")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not known_hosts.exists() and f"deleted {known_hosts}" in down.stdout


def test_sync_without_rsync_says_what_to_install(aws, tmp_path):
    env, _, _ = aws
    assert gpubox_cli(env, *LAUNCH).returncode == 0
    result = gpubox_cli(dict(env, GPUBOX_RSYNC=str(tmp_path / "no-rsync")), "sync", "--box", "alice")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[0].startswith("No `rsync` command was found")


def test_sync_of_a_stopped_box_asks_to_start_it(aws):
    env, _, _ = aws
    assert gpubox_cli(env, *LAUNCH).returncode == 0
    assert gpubox_cli(env, "stop", "--box", "alice").returncode == 0
    result = gpubox_cli(env, "sync", "--box", "alice")
    assert result.returncode == 1 and "is stopped, not running. Start it with" in result.stderr


def test_tunnel_to_a_box_it_cannot_reach_says_how_to_get_back_in(aws, tmp_path):
    env, _, _ = aws
    assert gpubox_cli(env, *LAUNCH).returncode == 0
    result = gpubox_cli(dict(env, GPUBOX_TEST_BOX_HOME=str(tmp_path / "gone")), "tunnel", "--box", "alice")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Could not reach box 'alice' over SSH (ssh: connect to host: Connection timed out)")
    assert ".venv/bin/python setup/gpubox.py start --box alice" in line and "ssh-add" in line
    assert "still installing" not in result.stdout + result.stderr
    (tmp_path / "box" / ".course").mkdir(parents=True)  # reachable, no token yet: still installing
    result = gpubox_cli(env, "tunnel", "--box", "alice")
    assert result.returncode == 1 and "still installing" in result.stdout
    # the box's cloud-init, as it answers while the boot script runs, and after it failed
    tools = tmp_path / "box-tools"
    tools.mkdir()
    for status in ("running", "error"):
        (tools / "cloud-init").write_text(f"#!/bin/sh\necho 'status: {status}'\n")
        (tools / "cloud-init").chmod(0o755)
        result = gpubox_cli(dict(env, PATH=f"{tools}:{env['PATH']}"), "tunnel", "--box", "alice")
        assert result.returncode == 1 and "Traceback" not in result.stderr
        if status == "running":
            assert "still installing" in result.stdout and not result.stderr
        else:
            assert "still installing" not in result.stdout
            (line,) = result.stderr.strip().splitlines()
            assert line.startswith("The box's setup failed, so JupyterLab has no token: see /var/log/cloud-init-"
                                   "output.log on the box (`.venv/bin/python setup/gpubox.py ssh --box alice`")


@pytest.mark.parametrize("setting, value", [("AWS_PROFILE", "no-such-profile"),
                                            ("AWS_CONFIG_FILE", "broken")])
def test_aws_settings_botocore_cannot_use_end_in_one_line(aws, tmp_path, setting, value):
    env, _, _ = aws
    if value == "broken":
        value = str(tmp_path / "config")
        pathlib.Path(value).write_text("[default\nregion = us-east-1\n")
    for command in (["status", "--box", "alice"], ["status", "--box", "alice", "--region", "us-east-1"]):
        result = gpubox_cli(dict(env, **{setting: value}), *command)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("Your AWS settings could not be used, so nothing was done")
        assert "Check ~/.aws/config and ~/.aws/credentials" in line and "aws configure" not in line


def test_every_gpubox_command_the_kit_shows_runs_with_a_python_that_has_boto3():
    """Stock macOS and Ubuntu have no `python` command, and their system Python refuses `pip install boto3`
    (externally-managed-environment): commands name the kit's .venv/bin/python (or ~/gpubox's, made for it), and
    SkyPilot is installed into a Python of its own (~/sky)."""
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, check=True).stdout
    bare, pip = [], []
    for name in files.splitlines():
        path = ROOT / name
        if path.suffix not in (".md", ".py", ".sh", ".yaml", ".ipynb", ".txt") or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if re.search(r"(^|[^/.\w])python3? setup/gpubox\.py", line):
                bare.append(f"{name}:{number}: {line.strip()}")
            if re.search(r"(?<!plain )(?<!refuses )`pip install (boto3|\"skypilot)", line) and (
                    name != "tests/test_gpubox.py"):
                pip.append(f"{name}:{number}: {line.strip()}")
    assert not bare and not pip, "\n".join(bare + pip)
    assert gpubox.parse_args(["status"]) and "usage: .venv/bin/python setup/gpubox.py" in subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True).stdout


@pytest.mark.parametrize("args", [["--help"], ["status"]])
def test_without_boto3_one_line_says_how_to_get_it(args):
    # a plain `python3 -m venv` has no boto3: one line naming the fix, exit 1, no traceback
    blocked = ("import runpy, sys; sys.modules['boto3'] = None; sys.argv = [sys.argv[1], *sys.argv[2:]]; "
               "runpy.run_path(sys.argv[0], run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", blocked, str(SCRIPT), *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "gpubox needs boto3, which this Python lacks: run it with the kit's .venv/bin/python (`make doctor` "
        "creates it), or give it a Python of its own: `python3 -m venv ~/gpubox && ~/gpubox/bin/pip install "
        "boto3`, then `~/gpubox/bin/python setup/gpubox.py …`."]
    assert "Traceback" not in result.stderr and not result.stdout
