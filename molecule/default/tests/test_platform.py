"""The whole platform, observed across all nodes."""

testinfra_hosts = ["ansible://all"]


def test_every_node_has_the_baseline(host):
    assert host.service("chrony").is_running
    assert host.user("growbin").exists
