#!/usr/bin/env python3
"""The hypervisor for a moto EC2 endpoint, used by scripts/demo-engines (the Rust tests have their own).

Nothing boots inside moto. This loop stands in for the machines: every instance moto reports `running`
gets its UserData (read back through DescribeInstanceAttribute, as an instance's cloud-init would) run as
a local process group; an instance that is no longer running has its process group killed (powered off).
The boot script is Hedge's own: it runs the task and reports output and exit status to the broker.

Usage: moto-hypervisor.py ENDPOINT [REGION]     (runs until killed)
"""
import base64, os, signal, subprocess, sys, time

import boto3

endpoint = sys.argv[1]
region = sys.argv[2] if len(sys.argv) > 2 else "us-east-1"
ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name=region,
                   aws_access_key_id="testing", aws_secret_access_key="testing")
running = {}  # instance id -> Popen
booted = set()
while True:
    try:
        pages = ec2.describe_instances(Filters=[{"Name": "tag-key", "Values": ["hedge:idempotency-key"]}])
    except Exception as e:  # moto restarting: try again
        print(f"moto-hypervisor: {e}", file=sys.stderr)
        time.sleep(1)
        continue
    for r in pages["Reservations"]:
        for i in r["Instances"]:
            iid, state = i["InstanceId"], i["State"]["Name"]
            if state == "running" and iid not in booted:
                attr = ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")
                data = attr.get("UserData", {}).get("Value")
                booted.add(iid)
                if data:
                    script = base64.b64decode(data).decode()
                    running[iid] = subprocess.Popen(["sh", "-c", script], stdout=subprocess.DEVNULL,
                                                    stderr=subprocess.DEVNULL, start_new_session=True)
            elif state != "running" and iid in running:
                p = running.pop(iid)
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
    time.sleep(0.3)
