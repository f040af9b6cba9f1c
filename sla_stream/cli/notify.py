"""The `notify` commands: bridges from the alerts topic to the tools that page people."""

from __future__ import annotations

import asyncio
import logging

import click

from sla_stream.settings import Settings

DEFAULT_WEB_PORT = 6067  # the worker's web server is on 6066

# Each option can also be set by the environment variable it names (deployments set SLA_* only).
ENV_VARS = {
    "urls": "SLA_ALERTMANAGER_URL",
    "group_id": "SLA_NOTIFY_GROUP",
    "resend_interval": "SLA_NOTIFY_RESEND_INTERVAL",
    "max_age": "SLA_NOTIFY_MAX_AGE",
    "max_poll_interval": "SLA_NOTIFY_MAX_POLL_INTERVAL",
    "web_host": "SLA_NOTIFY_WEB_HOST",
    "web_port": "SLA_NOTIFY_WEB_PORT",
}


@click.group()
def notify() -> None:
    """Deliver warnings, breaches and their clears from the alerts topic to notifiers."""


@notify.command("alertmanager")
@click.option(
    "--url",
    "urls",
    multiple=True,
    required=True,
    envvar=ENV_VARS["urls"],
    help="Alertmanager base URL; repeat (or space-separate in the variable) for every member "
    "of a cluster (a post counts once one member accepted it)",
)
@click.option("--broker", "bootstrap", help="bootstrap servers (default: SLA_BROKER or embedded)")
@click.option(
    "--group", "group_id", envvar=ENV_VARS["group_id"], help="consumer group [APP_ID-notify]"
)
@click.option(
    "--resend-interval",
    type=click.FloatRange(min=1.0),
    default=60.0,
    show_default=True,
    envvar=ENV_VARS["resend_interval"],
    help="seconds between re-posts of the firing alerts; each is valid for 4 intervals",
)
@click.option(
    "--max-age",
    type=click.FloatRange(min=0.0),
    default=7 * 86400.0,
    show_default=True,
    envvar=ENV_VARS["max_age"],
    help="seconds; older warnings and breaches are not posted (0: no limit)",
)
@click.option(
    "--max-poll-interval",
    type=click.FloatRange(min=1.0),
    default=300.0,
    show_default=True,
    envvar=ENV_VARS["max_poll_interval"],
    help="seconds the consumer group waits for a poll before dropping the bridge; it keeps "
    "polling (its partitions paused) while Alertmanager is down; one post may take half of it",
)
@click.option("--web-host", default="127.0.0.1", show_default=True, envvar=ENV_VARS["web_host"])
@click.option(
    "--web-port",
    type=int,
    default=DEFAULT_WEB_PORT,
    show_default=True,
    envvar=ENV_VARS["web_port"],
    help="serves /metrics and /healthz; 0 turns it off",
)
def alertmanager(
    urls: tuple[str, ...],
    bootstrap: str | None,
    group_id: str | None,
    resend_interval: float,
    max_age: float,
    max_poll_interval: float,
    web_host: str,
    web_port: int,
) -> None:
    """Post alerts to Alertmanager's v2 API; met, retracted and stopped resolve what they clear."""
    from aiokafka.errors import KafkaError

    from sla_stream.notify.bridge import BridgeConfig, run_bridge
    from sla_stream.stream.worker import default_bootstrap

    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    config = BridgeConfig(
        urls=tuple(u for url in urls for u in url.split()),
        bootstrap=bootstrap or default_bootstrap(settings),
        topic=settings.topic("alerts"),
        group_id=group_id or f"{settings.app_id}-notify",
        resend_interval_s=resend_interval,
        max_age_s=max_age or None,
        max_poll_interval_s=max_poll_interval,
        web_host=web_host,
        web_port=web_port or None,
    )
    click.echo(
        f"notify alertmanager: {config.topic} on {config.bootstrap} -> {' '.join(config.urls)}"
    )
    try:
        asyncio.run(run_bridge(config))
    except KafkaError as exc:  # at start: no broker to consume from; the supervisor restarts us
        raise click.ClickException(
            f"cannot consume {config.topic} on {config.bootstrap}: {exc}"
        ) from None
