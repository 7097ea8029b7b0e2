"""Other serving systems serve the kit's artifact as their users start them, answer what the
kit's model answers, and leave no process behind. Each runs in its own environment where it
pins packages the kit's server needs newer (made once, then reused)."""

import httpx
import pytest

from mlinfra_kit.serving.peers import PEERS, _alive, run_peer


@pytest.mark.parametrize("name", sorted(PEERS))
def test_a_peer_serves_the_kits_answers_and_stops_whole(name, artifact, trained):
    peer = PEERS[name]
    with run_peer(peer, artifact, timeout_s=300) as running:
        assert running.cold_start_s > 0 and running.rss_mb() > 0
        group = running.tree()
        for title in ("YOLO object detection on a webcam", "Fine-tuning BERT for contracts"):
            answer = httpx.post(
                running.url + running.path, json=running.body(title, ""), timeout=30
            )
            assert answer.status_code == 200, answer.text
            assert running.tag_of(answer.json()) == trained.predict([title])[0].tag
    assert peer.glue_lines > 5
    alive = [pid for pid in group if _alive(pid)]
    assert not alive, f"{name} left processes behind: {alive}"
