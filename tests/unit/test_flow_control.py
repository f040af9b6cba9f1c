"""`keep_queued_messages`: a resume of a flow already running keeps what the agents have queued."""

from __future__ import annotations

import asyncio

from mode.utils.queues import FlowControlEvent, FlowControlQueue

from sla_stream.stream.worker import keep_queued_messages


def test_a_resume_of_a_running_flow_keeps_the_queue_and_a_real_resume_clears_it() -> None:
    async def scenario() -> None:
        flow = FlowControlEvent(initially_suspended=True)
        keep_queued_messages(flow)
        keep_queued_messages(flow)  # idempotent: one wrapper, not two
        queue: FlowControlQueue[str] = FlowControlQueue(flow_control=flow, clear_on_resume=True)
        flow.resume()  # suspended -> running
        queue.put_nowait("event at offset 11")
        flow.resume()  # already running (Faust's second resume after a changelog read)
        assert queue.qsize() == 1 and flow.is_active()
        flow.suspend()  # a rebalance
        flow.resume()  # a real resume still clears what was queued before it
        assert queue.qsize() == 0

    asyncio.run(scenario())


def test_without_the_patch_faust_flow_control_drops_queued_events() -> None:
    # The behaviour the patch works around, so the test above fails if mode changes under it.
    async def scenario() -> None:
        flow = FlowControlEvent(initially_suspended=False)
        queue: FlowControlQueue[str] = FlowControlQueue(flow_control=flow, clear_on_resume=True)
        queue.put_nowait("event at offset 11")
        flow.resume()
        assert queue.qsize() == 0

    asyncio.run(scenario())
