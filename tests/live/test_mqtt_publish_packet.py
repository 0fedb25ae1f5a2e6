"""The subscriber's lean PUBLISH decoder agrees with paho's own on every packet it takes,
and hands everything else (QoS 2, topic aliases, bad UTF-8, truncated packets) to paho."""

from __future__ import annotations

from typing import Any

import paho.mqtt.client as paho
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt import _packet
from paho.mqtt.enums import CallbackAPIVersion

from smartcity.bench.ingest import _remaining_length  # MQTT's variable byte integer
from smartcity.live.ingest.mqtt import _Client


def _client(protocol: int) -> tuple[_Client, list[Any]]:
    got: list[Any] = []
    client = _Client(CallbackAPIVersion.VERSION2, protocol=protocol, manual_ack=True)
    client.on_message = lambda _c, _u, msg: got.append(msg)
    return client, got


def _deliver(client: _Client, command: int, packet: bytes) -> None:
    client._in_packet["command"] = command
    client._in_packet["packet"] = bytearray(packet)
    client._handle_publish()


# Properties a broker may send on a PUBLISH (MQTT v5 3.3.2.3): message expiry and content type
# at most once each, user properties any number of times.
def mqtt_text(max_size: int) -> st.SearchStrategy[str]:  # MQTT strings hold no U+0000
    return st.text(st.characters(blacklist_characters="\x00", codec="utf-8"), max_size=max_size)


def _utf8(text: str) -> bytes:
    return len(text.encode()).to_bytes(2, "big") + text.encode()


properties = st.tuples(
    st.none() | st.integers(0, 2**32 - 1).map(lambda n: b"\x02" + n.to_bytes(4, "big")),
    st.none() | mqtt_text(40).map(lambda t: b"\x03" + _utf8(t)),
    st.lists(
        st.tuples(mqtt_text(20), mqtt_text(60)).map(
            lambda kv: b"\x26" + _utf8(kv[0]) + _utf8(kv[1])
        ),
        max_size=4,
    ),
).map(lambda p: (p[0] or b"") + (p[1] or b"") + b"".join(p[2]))


@given(
    topic=mqtt_text(80).filter(bool),
    payload=st.binary(max_size=300),
    qos=st.sampled_from([0, 1]),
    mid=st.integers(1, 65535),
    props=properties,
    v5=st.booleans(),
    retain=st.booleans(),
)
def test_lean_decoder_agrees_with_paho(
    topic: str, payload: bytes, qos: int, mid: int, props: bytes, v5: bool, retain: bool
) -> None:
    protocol = paho.MQTTv5 if v5 else paho.MQTTv311
    t = topic.encode()
    packet = len(t).to_bytes(2, "big") + t + (mid.to_bytes(2, "big") if qos else b"")
    if v5:
        packet += _remaining_length(len(props)) + props
    packet += payload
    command = 0x30 | (qos << 1) | int(retain)
    reference = _packet.decode_publish(command, packet, protocol)
    client, got = _client(protocol)
    _deliver(client, command, packet)
    assert len(got) == 1
    msg = got[0]
    assert (msg.topic, msg.payload, msg.qos) == (reference.topic.decode(), reference.payload, qos)
    assert msg.mid == (reference.mid if qos else 0)


def test_what_the_lean_decoder_does_not_take_goes_to_paho() -> None:
    client, got = _client(paho.MQTTv5)
    bad_utf8 = b"\x00\x02\xff\xfe" + b"\x00\x07" + b"\x00" + b"{}"
    _deliver(client, 0x32, bad_utf8)  # paho raises when the topic is read; we must not crash
    alias = b"\x00\x00" + b"\x00\x07" + b"\x03\x23\x00\x01" + b"{}"  # empty topic, alias 1
    _deliver(client, 0x32, alias)
    assert len(got) == 2
    assert all(isinstance(m, paho.MQTTMessage) for m in got)  # paho's objects, not ours
    client, got = _client(paho.MQTTv5)
    _deliver(client, 0x34, b"\x00\x01a\x00\x09\x00{}")  # QoS 2: paho keeps it until PUBREL
    assert got == []
