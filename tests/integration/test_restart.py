"""A worker's orderly stop and its restart, on the embedded broker.

The embedded broker numbers a group's generations from 0, where Kafka starts at 1, and
aiokafka leaves a group only at a generation above 0: the first worker of a group stopped
without leaving, and the broker held its successor until the silent member's session expired.
"""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient

from tests.integration.harness import System


async def group_members(bootstrap: str, group: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    (described,) = response.groups
    assert described[0] == 0, f"DescribeGroups error {described[0]}"
    return [member[0] for member in described[5]]


async def test_a_stopped_worker_leaves_its_group_and_the_next_one_is_alone(system: System) -> None:
    await system.create_topics()
    group = system.settings.app_id
    first = system.worker("w1").start()
    first.wait_ready(partitions=system.partitions)
    assert len(await group_members(system.bootstrap, group)) == 1
    first.stop()  # SIGTERM
    assert first.proc is not None and first.proc.returncode == 0, first.output()

    # Asked right after the exit, long before a 10 s session could expire: the member is gone.
    assert await group_members(system.bootstrap, group) == [], first.output()
    assert "left group" in first.output()

    second = system.worker("w1").start()  # same data directory, the restart
    second.wait_ready(partitions=system.partitions)
    members = await group_members(system.bootstrap, group)
    assert len(members) == 1, members
    second.stop()
    assert await group_members(system.bootstrap, group) == []
