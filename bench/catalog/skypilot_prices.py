"""Cross-checks every price of Hedge's import against SkyPilot 0.14.1's own cost function.

For each offer of a Hedge native catalog built from the SkyPilot v8 files (default: data/catalog.json), asks
SkyPilot for `Resources(cloud, instance_type, accelerators, region, zone, use_spot).get_cost(3600)` and
compares it to Hedge's on-demand and spot price. GCP offers exercise the host + GPU join. Prints every
mismatch and a summary line.

Run by bench/catalog/check_prices.sh, which prepares an offline SkyPilot home.
usage: python skypilot_prices.py CATALOG.json
"""
import json
import sys

from sky import check as sky_check
from sky import clouds
from sky.resources import Resources

CLOUDS = {"aws": clouds.AWS(), "gcp": clouds.GCP(), "azure": clouds.Azure(), "oci": clouds.OCI(),
          "lambda": clouds.Lambda(), "nebius": clouds.Nebius()}
sky_check.get_cached_enabled_clouds_or_refresh = lambda *a, **k: list(CLOUDS.values())

offers = json.load(open(sys.argv[1]))["offers"]
checked = mismatched = failed = 0
for o in offers:
    cloud = CLOUDS[o["provider"]]
    acc = None
    if o.get("accelerator") and o["provider"] == "gcp":
        name, count = o["accelerator"].split(":")
        acc = {name: int(count)}
    for market, price in (("on_demand", o.get("on_demand")), ("spot", o.get("spot"))):
        if price is None:
            continue
        use_spot = market == "spot"
        # SkyPilot prices on-demand per region and spot per zone (optimizer._make_launchables_for_valid_region_zones).
        zone = o.get("zone") if use_spot else None
        try:
            r = Resources(cloud=cloud, instance_type=o["instance_type"], accelerators=acc, region=o["region"],
                          zone=zone, use_spot=use_spot)
            sky = r.get_cost(3600)
        except Exception as e:  # noqa: BLE001 - report and go on
            failed += 1
            print(f"FAILED {o['provider']} {o['instance_type']} {o['region']} {zone} {market}: {type(e).__name__}: {e}")
            continue
        checked += 1
        if abs(sky - price) > 1e-6:
            mismatched += 1
            print(f"MISMATCH {o['provider']} {o['instance_type']} {o['region']} {zone} {market}: hedge {price} skypilot {sky}")
print(f"checked {checked} prices of {len(offers)} offers against SkyPilot 0.14.1: {mismatched} mismatched, {failed} failed")
