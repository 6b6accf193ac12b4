"""Command line of the HIL rig: python -m hil {demo,evse,unit,…} --help"""
import argparse
import sys

import hil  # noqa: F401  (puts device/ on sys.path)


def main(argv=None):
    from hil import demo, evse_cli, mqtt_traffic, rtt_bench, unit_cli
    from hil import bench, ct_cli, scenario_cli

    parser = argparse.ArgumentParser(prog="python -m hil", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    modules = {}
    for mod in (demo, evse_cli, mqtt_traffic, rtt_bench, unit_cli, ct_cli, scenario_cli, bench):
        p = mod.add_parser(sub)
        modules[p.prog.split()[-1]] = mod
    modules.update((m.add_parser(sub).prog.split()[-1], m) for m in (__import__("hil." + n, fromlist=[n]) for n in ("vm_gate", "heap_bench")))  # noqa: E501
    args = parser.parse_args(argv)
    return modules[args.command].run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
