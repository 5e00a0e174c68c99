"""The node baseline, observed on a converged host."""

import growbin_testinfra as gt


def test_hostname_and_hosts_entries(host):
    assert host.check_output("hostname") == "common-node"
    hosts = host.file("/etc/hosts").content_string
    address = host.interface.default().addresses[0]
    assert f"{address} common-node\n" in hosts.split("# BEGIN growbin.platform.common")[1]


def test_time_zone_and_chrony(host):
    assert host.file("/etc/localtime").linked_to == "/usr/share/zoneinfo/Asia/Seoul"
    assert host.check_output("date +%Z") == "KST"
    chrony = host.service("chrony")
    assert chrony.is_running and chrony.is_enabled
    assert "server 169.254.169.123 iburst" in host.file("/etc/chrony/chrony.conf").content_string
    if gt.in_container(host):
        assert "-x" in host.check_output("ps -o args= -C chronyd")


def test_kernel_modules_persisted(host):
    lines = host.file("/etc/modules-load.d/growbin.conf").content_string.splitlines()
    modules = [line for line in lines if line and not line.startswith("#")]
    assert modules == ["overlay", "br_netfilter"]


def test_sysctls_persisted_and_applied_where_possible(host):
    wanted = {
        "net.bridge.bridge-nf-call-iptables": "1",
        "net.bridge.bridge-nf-call-ip6tables": "1",
        "net.ipv4.ip_forward": "1",
        "vm.swappiness": "0",
    }
    assert gt.sysctl_file_settings(host, "/etc/sysctl.d/90-growbin.conf") == wanted
    if not gt.in_container(host):
        for key, value in wanted.items():
            assert host.file("/proc/sys/" + key.replace(".", "/")).content_string.strip() == value


def test_swap_is_off(host):
    assert host.check_output("swapon --show --noheadings") == ""
    for line in host.file("/etc/fstab").content_string.splitlines():
        fields = line.split()
        assert not (fields and not fields[0].startswith("#") and "swap" in fields[2:3])


def test_journald_limits(host):
    conf = host.file("/etc/systemd/journald.conf.d/growbin.conf").content_string
    assert "SystemMaxUse=512M" in conf
    assert "MaxRetentionSec=14day" in conf


def test_admin_user_has_keys_and_sudo(host):
    user = host.user("opsadmin")
    assert "growbin-admins" in user.groups
    assert user.shell == "/bin/bash"
    keys = host.file("/home/opsadmin/.ssh/authorized_keys")
    assert keys.user == "opsadmin" and keys.mode == 0o600
    assert "molecule" in keys.content_string
    # A key-only account: the password field is locked.
    assert host.check_output("getent shadow opsadmin").split(":")[1].startswith("!")
    assert host.run("sudo -n -l -U opsadmin").stdout.count("NOPASSWD: ALL") == 1
    sudoers = host.file("/etc/sudoers.d/growbin-admins")
    assert sudoers.mode == 0o440 and sudoers.user == "root"


def test_sshd_is_hardened(host):
    assert host.service("ssh").is_running
    effective = gt.sshd_effective(host)
    assert effective["permitrootlogin"] == "no"
    assert effective["passwordauthentication"] == "no"
    assert effective["kbdinteractiveauthentication"] == "no"
    assert effective["pubkeyauthentication"] == "yes"
    assert effective["maxauthtries"] == "3"
    assert effective["x11forwarding"] == "no"
    assert host.socket("tcp://0.0.0.0:22").is_listening
