"""python -m hil web-bench builds its rig (the firmware with the web UI listening on the virtual
clock); the benchmark itself is run by hand (it prints figures)."""
from hil import web_bench


def test_the_bench_rig_has_the_web_ui_and_the_wifi_radio_options():
    # it broke when WorldRig grew radio=: port_kwargs was passed twice (a TypeError at start)
    rig = web_bench._rig()
    try:
        assert rig.world.app.web is not None
        assert rig.world.run_until(lambda: rig.world.app.web.listening is not None, 5000)
    finally:
        rig.close()
