"""Command line of the HIL rig: python -m hil {demo,evse,unit,…} --help"""
import sys

import hil  # noqa: F401  (puts device/ on sys.path)


def main(argv=None):
    from hil import demo, evse_cli, mqtt_traffic, rtt_bench, unit_cli
    from hil import bench, bundle, ct_cli, heap_bench, scenario_cli, vm_gate, wifi_bench
    from hil import lcd_bench

    from hil.cli import OneLineParser

    parser = OneLineParser(prog="python -m hil", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    modules = {}
    for mod in (demo, evse_cli, mqtt_traffic, rtt_bench, unit_cli, ct_cli, scenario_cli, bench,
                bundle, vm_gate, heap_bench, lcd_bench, wifi_bench):
        p = mod.add_parser(sub)
        modules[p.prog.split()[-1]] = mod
    args = parser.parse_args(argv)
    return modules[args.command].run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
