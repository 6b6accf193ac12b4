"""Command line of the HIL rig: python -m hil {demo,evse,unit,…} --help"""
import sys

import hil  # noqa: F401  (puts device/ on sys.path)


def main(argv=None):
    from hil import demo, evse_cli, mqtt_traffic, rtt_bench, unit_cli
    from hil import bench, ct_cli, scenario_cli

    from hil.cli import OneLineParser

    parser = OneLineParser(prog="python -m hil", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    modules = {}
    for mod in (demo, evse_cli, mqtt_traffic, rtt_bench, unit_cli, ct_cli, scenario_cli, bench):
        p = mod.add_parser(sub)
        modules[p.prog.split()[-1]] = mod
    from hil import bundle; modules[bundle.add_parser(sub).prog.split()[-1]] = bundle  # noqa: E702
    args = parser.parse_args(argv)
    return modules[args.command].run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
