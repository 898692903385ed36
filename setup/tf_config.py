"""Prints TF_CONFIG for one node of a multi-machine training run, as JSON.

TensorFlow's MultiWorkerMirroredStrategy learns from the TF_CONFIG variable
which machines take part ("worker": every node's "ip:port", the same list on
every node) and which one this is ("index"). `setup/skypilot-multinode.yaml`
runs this on each node with the variables SkyPilot sets there::

    export TF_CONFIG="$(python3 setup/tf_config.py)"      # reads SKYPILOT_NODE_IPS and SKYPILOT_NODE_RANK
    python3 setup/tf_config.py --ips "10.0.0.1
    10.0.0.2" --rank 1 --port 12345

SKYPILOT_NODE_IPS holds one IP per line, in node-rank order (the head node,
rank 0, first); worker i is the node of rank i, and worker 0 is the chief.
"""

import argparse
import ipaddress
import json
import os
import sys

DEFAULT_PORT = 12345


def worker_address(ip, port):
    """`ip:port`, with an IPv6 address in brackets."""
    address = ipaddress.ip_address(ip)
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


def build(ips, rank, num_nodes=None, port=DEFAULT_PORT):
    """The TF_CONFIG of the node of rank `rank`.

    Args:
        ips: the nodes' IP addresses, one per line (SKYPILOT_NODE_IPS), in rank order.
        rank: this node's rank (SKYPILOT_NODE_RANK), a whole number from 0.
        num_nodes: the number of nodes (SKYPILOT_NUM_NODES), checked against `ips`; None: not checked.
        port: the port each worker listens on for the others.

    Returns:
        A dict: `{"cluster": {"worker": ["ip:port", ...]}, "task": {"type": "worker", "index": rank}}`.

    Raises:
        ValueError: the message says which input is wrong and what it should be.
    """
    names = [line.strip() for line in (ips or "").splitlines() if line.strip()]
    if not names:
        raise ValueError("no node IPs: give them one per line with --ips, or run this inside a SkyPilot job, "
                         "which sets SKYPILOT_NODE_IPS")
    for name in names:
        try:
            ipaddress.ip_address(name)
        except ValueError:
            raise ValueError(f"'{name}' in the node IPs is not an IP address; give one IP per line "
                             f"(SKYPILOT_NODE_IPS)") from None
    if len(set(names)) != len(names):
        raise ValueError(f"the node IPs list an address twice ({', '.join(names)}); each node appears once")
    try:
        rank = int(str(rank).strip())
    except ValueError:
        raise ValueError(f"the rank '{rank}' is not a whole number; give --rank 0 to "
                         f"{len(names) - 1} (SKYPILOT_NODE_RANK)") from None
    if not 0 <= rank < len(names):
        raise ValueError(f"rank {rank} is not one of the {len(names)} nodes; give --rank 0 to {len(names) - 1}")
    if num_nodes not in (None, ""):
        if str(num_nodes).strip() != str(len(names)):
            raise ValueError(f"{len(names)} node IPs but {num_nodes} nodes (SKYPILOT_NUM_NODES); "
                             f"give one IP per node")
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"--port must be from 1 to 65535, not {port}")
    return {"cluster": {"worker": [worker_address(name, int(port)) for name in names]},
            "task": {"type": "worker", "index": rank}}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python setup/tf_config.py", description=__doc__.split("\n")[0])
    parser.add_argument("--ips", default=os.environ.get("SKYPILOT_NODE_IPS"),
                        help="node IPs, one per line (default: $SKYPILOT_NODE_IPS)")
    parser.add_argument("--rank", default=os.environ.get("SKYPILOT_NODE_RANK"),
                        help="this node's rank (default: $SKYPILOT_NODE_RANK)")
    parser.add_argument("--num-nodes", default=os.environ.get("SKYPILOT_NUM_NODES"),
                        help="number of nodes, to check the IPs (default: $SKYPILOT_NUM_NODES)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port the workers talk on (default {DEFAULT_PORT})")
    args = parser.parse_args(argv)
    if args.rank is None:
        print("error: no rank: give --rank, or run this inside a SkyPilot job, which sets SKYPILOT_NODE_RANK",
              file=sys.stderr)
        return 2
    try:
        config = build(args.ips, args.rank, args.num_nodes, args.port)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
