"""RabbitMQ as the role leaves it, observed from the controller over the node's private address."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
import uuid

import growbin_testinfra as gt
import pika
import pika.exceptions
import pytest

SECRETS = gt.scenario_vars("secrets")
VHOST = "growbin"
APP_USER = "growbin"
MONITORING_USER = "monitoring"
WORK_QUEUES = ("storage", "ai", "chat")
WITNESS_QUEUE = "molecule.restart-witness"


@pytest.fixture(scope="module")
def address(host) -> str:
    return host.interface.default().addresses[0]


def amqp(address: str, user: str, password: str, vhost: str = VHOST) -> pika.BlockingConnection:
    return pika.BlockingConnection(
        pika.ConnectionParameters(
            host=address,
            port=5672,
            virtual_host=vhost,
            credentials=pika.PlainCredentials(user, password),
            connection_attempts=1,
            socket_timeout=10,
            blocked_connection_timeout=10,
        )
    )


@pytest.fixture
def channel(address):
    connection = amqp(address, APP_USER, SECRETS["rabbitmq_app_password"])
    yield connection.channel()
    connection.close()


def api(address: str, path: str, user: str, password: str) -> object:
    request = urllib.request.Request(f"http://{address}:15672/api/{path}")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def monitoring_api(address: str, path: str) -> object:
    return api(address, path, MONITORING_USER, SECRETS["rabbitmq_monitoring_password"])


def monitoring_api_settled(address: str, path: str, ready, timeout: float = 60) -> object:
    """The API's answer once `ready(answer)` holds: statistics fill in seconds after a start."""
    deadline = time.monotonic() + timeout
    while True:
        answer = monitoring_api(address, path)
        if ready(answer) or time.monotonic() > deadline:
            return answer
        time.sleep(1)


def get_body(channel, queue: str, body: bytes):
    """Take messages from `queue` until `body` turns up; the method frame and properties."""
    while True:
        method, properties, received = channel.basic_get(queue, auto_ack=False)
        if method is None:
            return None, None
        channel.basic_ack(method.delivery_tag)
        if received == body:
            return method, properties


def test_listens_on_the_private_address_and_loopback_only(host, address):
    listening = {str(s) for s in host.socket.get_listening_sockets()}
    assert {f"tcp://{address}:5672", "tcp://127.0.0.1:5672"} <= listening
    assert {f"tcp://{address}:15672", f"tcp://{address}:15692"} <= listening
    for port in (5672, 15672, 15692):
        assert not any(s.endswith(f":{port}") and "0.0.0.0" in s for s in listening)
        assert not any(s.endswith(f":{port}") and "::" in s for s in listening)


def test_guest_cannot_log_in(address):
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        amqp(address, "guest", "guest", vhost="/")
    with pytest.raises(urllib.error.HTTPError) as refused:
        api(address, "overview", "guest", "guest")
    assert refused.value.code == 401


def test_app_user_is_confined_to_its_virtual_host(address):
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError):
        amqp(address, APP_USER, SECRETS["rabbitmq_app_password"], vhost="/")


def test_app_user_publishes_and_consumes(channel):
    body = f"hello {uuid.uuid4()}".encode()
    channel.confirm_delivery()
    channel.basic_publish("", "chat", body, pika.BasicProperties(delivery_mode=2))
    method, _ = get_body(channel, "chat", body)
    assert method is not None


@pytest.mark.parametrize("queue", WORK_QUEUES)
def test_rejected_message_lands_in_the_matching_dead_letter_queue(channel, queue):
    body = f"poison {uuid.uuid4()}".encode()
    channel.confirm_delivery()
    channel.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2))
    while True:
        method, _, received = channel.basic_get(queue, auto_ack=False)
        assert method is not None, f"the message never reached {queue}"
        if received == body:
            channel.basic_reject(method.delivery_tag, requeue=False)
            break
        channel.basic_ack(method.delivery_tag)
    for _ in range(50):
        method, properties = get_body(channel, f"{queue}.dlq", body)
        if method is not None:
            break
        channel.connection.sleep(0.1)
    assert method is not None, f"the rejected message is not in {queue}.dlq"
    death = properties.headers["x-death"][0]
    assert (death["queue"], death["reason"], death["exchange"]) == (queue, "rejected", "")
    assert method.routing_key == queue


def test_topology_is_durable_classic_queues_with_policies(address):
    listed = monitoring_api_settled(
        address,
        f"queues/{VHOST}",
        lambda queues: all("effective_policy_definition" in queue for queue in queues),
    )
    queues = {queue["name"]: queue for queue in listed}
    for name in WORK_QUEUES:
        for queue in (queues[name], queues[f"{name}.dlq"]):
            assert queue["durable"] is True and queue["auto_delete"] is False
            assert queue.get("type", "classic") == "classic"
        assert queues[name]["effective_policy_definition"] == {
            "dead-letter-exchange": "growbin.dlx",
            "dead-letter-routing-key": name,
        }
        assert queues[f"{name}.dlq"]["effective_policy_definition"] == {"message-ttl": 604800000}
    exchange = monitoring_api(address, f"exchanges/{VHOST}/growbin.dlx")
    assert exchange["type"] == "direct" and exchange["durable"] is True


def test_flow_control_limits_are_set(address):
    (node,) = monitoring_api_settled(
        address, "nodes", lambda nodes: all("disk_free_limit" in node for node in nodes)
    )
    assert node["disk_free_limit"] == 1_000_000_000
    assert 0 < node["mem_limit"] < 1.0 * 1024**4
    assert node["running"] is True


def test_only_the_expected_users_exist(host):
    users = host.check_output("rabbitmqctl list_users --quiet --formatter json")
    by_name = {user["user"]: user["tags"] for user in json.loads(users)}
    assert set(by_name) == {APP_USER, MONITORING_USER, "growbin-admin"}
    assert by_name[MONITORING_USER] == ["monitoring"]
    assert by_name[APP_USER] == []


def test_monitoring_user_reads_statistics_but_no_messages(address):
    overview = monitoring_api(address, "overview")
    assert overview["rabbitmq_version"].startswith("3.10")
    connection = amqp(address, MONITORING_USER, SECRETS["rabbitmq_monitoring_password"])
    try:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            connection.channel().basic_get("storage")
        assert refused.value.reply_code == 403
    finally:
        if connection.is_open:
            connection.close()


def test_prometheus_endpoint_serves_rabbitmq_metrics(address):
    with urllib.request.urlopen(f"http://{address}:15692/metrics", timeout=10) as response:
        metrics = response.read().decode()
    assert "rabbitmq_identity_info" in metrics
    assert any(line.startswith("rabbitmq_queues ") for line in metrics.splitlines())


def test_erlang_cookie_is_the_secret_and_private(host):
    cookie = host.file("/var/lib/rabbitmq/.erlang.cookie")
    assert (cookie.user, cookie.mode) == ("rabbitmq", 0o400)
    assert (
        host.check_output("cat /var/lib/rabbitmq/.erlang.cookie")
        == SECRETS["rabbitmq_erlang_cookie"]
    )


def test_persistent_messages_survive_a_broker_restart(host, channel):
    current = gt.systemd_invocation_id(host, "rabbitmq-server")
    earlier = gt.RestartWitnesses("rabbitmq", host).before(current)
    if not earlier:
        pytest.skip("rabbitmq-server has not restarted since the first witness was published")
    for witness in earlier:
        method, properties = get_body(channel, WITNESS_QUEUE, witness["body"].encode())
        assert method is not None, witness
        assert properties.delivery_mode == 2


def test_persistent_message_is_published_for_the_restart(host, channel):
    body = f"survivor {uuid.uuid4()}".encode()
    channel.queue_declare(WITNESS_QUEUE, durable=True)
    channel.confirm_delivery()
    channel.basic_publish("", WITNESS_QUEUE, body, pika.BasicProperties(delivery_mode=2))
    assert channel.queue_declare(WITNESS_QUEUE, passive=True).method.message_count >= 1
    gt.RestartWitnesses("rabbitmq", host).record(
        gt.systemd_invocation_id(host, "rabbitmq-server"), body=body.decode()
    )
