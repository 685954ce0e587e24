"""The `messenger dev` command group: start, env, subscribe, inbox [--follow], fault, digest."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from backend.devtools.dev import dev_directory, read_state
from backend.devtools.faults import Fault, Provider

dev_cli = typer.Typer(
    invoke_without_command=True,
    no_args_is_help=False,
    help="Local playground: the service with FCM, APNs, Web Push and SMTP emulated.",
)
CONTROL = {Provider.FCM: "fcm", Provider.APNS: "apns", Provider.WEBPUSH: "webpush"}


@dev_cli.callback()
def dev(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind")] = 8000,
) -> None:
    """Start everything (no subcommand), or inspect a running dev mode."""
    if ctx.invoked_subcommand is not None:
        return
    from backend.app.command_setup import setup_logging, silence_secrets_in_logs
    from backend.devtools.dev import start

    setup_logging()
    silence_secrets_in_logs()
    start(host, port)


def _control_url(provider: Provider) -> str:
    return read_state(dev_directory(), "emulators.json")[CONTROL[provider]]["control_url"]


def _call(method: str, url: str, body: Any = None) -> Any:
    import httpx

    response = httpx.request(method, url, json=body, timeout=10)
    response.raise_for_status()
    return response.json()


@dev_cli.command("env")
def env() -> None:
    """Print the shell variables of the running dev mode (`eval "$(messenger dev env)"`)."""
    path = dev_directory() / "env.sh"
    if not path.exists():
        raise SystemExit(f"{path} not found: is `messenger dev` running?")
    typer.echo(path.read_text(), nl=False)


@dev_cli.command()
def subscribe(
    name: Annotated[str, typer.Option(help="device_name of the registration")] = "Dev browser",
) -> None:
    """Subscribe a browser at the Web Push emulator; print the registration body to POST."""
    subscription = _call("POST", _control_url(Provider.WEBPUSH) + "/subscribe?n=1")[0]
    body = {
        "device_token": json.dumps(subscription),
        "platform": "web",
        "provider": "web_push",
        "device_name": name,
    }
    typer.echo(json.dumps(body))


def _provider_of(token: str, state: dict[str, Any]) -> Provider:
    if token.startswith(state["webpush"]["endpoint_prefix"]) or token.startswith("{"):
        return Provider.WEBPUSH
    if len(token) >= 64 and all(c in "0123456789abcdefABCDEF" for c in token):
        return Provider.APNS
    return Provider.FCM


@dev_cli.command()
def fault(
    kind: Annotated[Fault, typer.Argument(help="What the provider answers from now on")],
    token: Annotated[str, typer.Option(help="Device token, or a Web Push endpoint")],
    provider: Annotated[
        Provider | None, typer.Option(help="Default: guessed from the token's shape")
    ] = None,
) -> None:
    """Make a provider answer pushes to one token as dead, throttled or failing (or ok)."""
    from dataclasses import asdict

    from backend.devtools.providers import fault_reply

    state = read_state(dev_directory(), "emulators.json")
    if token.startswith("{"):  # a whole PushSubscription: its endpoint is the key
        token = json.loads(token)["endpoint"]
    chosen = provider or _provider_of(token, state)
    reply = fault_reply(chosen, kind)
    url = state[CONTROL[chosen]]["control_url"] + "/always"
    _call("POST", url, {"key": token, "reply": None if reply is None else asdict(reply)})
    typer.echo(f"{chosen}: pushes to that token now answer {kind}")


@dev_cli.command()
def digest(user: Annotated[str, typer.Option(help="User id whose digest to send now")]) -> None:
    """`messenger digest --user` against the running dev mode: the email goes to its sink
    (`messenger dev inbox`). Prints `sent` or `nothing`."""
    from backend.app.cli import send_digest_command
    from backend.app.command_setup import setup_logging
    from backend.devtools.dev import dev_settings

    setup_logging()
    settings = dev_settings(dev_directory())
    typer.echo("sent" if send_digest_command(settings, user) else "nothing")


def _show_push(provider: str, item: dict[str, Any]) -> str:
    when = time.strftime("%H:%M:%S", time.localtime(item["at"]))
    headers = {k: v for k, v in item["headers"].items() if k.lower() != "authorization"}
    return (
        f"[{when}] {provider} -> {item['status']}  key={item['key']}\n"
        f"  headers: {json.dumps(headers, sort_keys=True)}\n"
        f"  payload: {json.dumps(item['payload'], ensure_ascii=False, sort_keys=True)}"
    )


def _snapshot(directory: Path) -> list[tuple[float, str]]:
    from backend.devtools.emulators.smtp import read_mail

    state = read_state(directory, "emulators.json")
    entries: list[tuple[float, str]] = []
    for provider in Provider:
        items = _call("GET", state[CONTROL[provider]]["control_url"] + "/received?limit=1000")
        entries += [(item["at"], _show_push(str(provider), item)) for item in items]
    for mail in read_mail(directory / "mail"):
        at = float(mail["file"].split("-", 1)[0])
        headers = mail["headers"]
        entries.append(
            (
                at,
                f"[{time.strftime('%H:%M:%S', time.localtime(at))}] email  "
                f"to={headers.get('To', '')}  subject={headers.get('Subject', '')}\n"
                f"  body: {mail['body'].strip()}",
            )
        )
    return sorted(entries)


@dev_cli.command()
def inbox(
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new ones")] = False,
    wait: Annotated[
        int, typer.Option(help="First wait (up to a minute) until this many have arrived")
    ] = 0,
) -> None:
    """What each emulator accepted (Web Push decrypted) and the emails the sink received."""
    directory = dev_directory()
    deadline = time.monotonic() + 60
    entries = _snapshot(directory)
    while len(entries) < wait and time.monotonic() < deadline:
        time.sleep(0.2)
        entries = _snapshot(directory)
    seen: set[tuple[float, str]] = set()
    while True:
        for entry in entries:
            if entry not in seen:
                seen.add(entry)
                typer.echo(entry[1])
        if not follow:
            if not seen:
                typer.echo("nothing received yet")
            return
        time.sleep(0.5)
        entries = _snapshot(directory)
