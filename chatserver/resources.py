"""The crisis resources the web client offers, served at `/resources.json`.

An operator replaces the built-in list with a JSON file (`CHATSERVER_RESOURCES_FILE`) in the same
shape; it is read and checked once at start, so a broken file stops the node instead of silently
showing nothing. The page picks lines by the browser's language and time zone, never by address:
this route sees no more than any static file does and logs nothing.

Shape: `{"exit_url": str, "resources": [Line, ...], "directory": Line}` where a Line is
`{"name": str, "countries": [ISO 3166 alpha-2 | "*"], "languages": [BCP 47 primary subtag],
"phone"?: str, "sms"?: str, "url"?: str (https), "hours"?: str, "description"?: str}`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import msgspec
from aiohttp import web

Short = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
HttpsUrl = Annotated[str, msgspec.Meta(pattern=r"^https://[^\s\"'<>]+$", max_length=500)]
Country = Annotated[str, msgspec.Meta(pattern=r"^([A-Z]{2}|\*)$")]
Language = Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2,3}$")]


class Line(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    name: Short
    countries: list[Country]
    languages: list[Language] = msgspec.field(default_factory=list)
    phone: Short | None = None
    sms: Short | None = None
    url: HttpsUrl | None = None
    hours: Short | None = None
    description: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class Resources(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    resources: Annotated[list[Line], msgspec.Meta(max_length=500)]
    directory: Line | None = None
    exit_url: HttpsUrl | None = None


def _line(name: str, countries: str, languages: str, **fields: str) -> dict[str, Any]:
    return {"name": name, "countries": countries.split(), "languages": languages.split(), **fields}


# Well-known national lines (checked 2025). Operators should review them for their audience.
BUILT_IN: dict[str, Any] = {
    "directory": _line(
        "Find a Helpline",
        "*",
        "",
        url="https://findahelpline.com",
        description="Free, confidential helplines in many countries, searchable by country and topic.",
    ),
    "resources": [
        _line(
            "Samaritans",
            "GB IE",
            "en",
            phone="116 123",
            url="https://www.samaritans.org",
            hours="24/7",
            description="Someone to talk to, whatever you are going through.",
        ),
        _line(
            "Shout",
            "GB",
            "en",
            sms="Text SHOUT to 85258",
            url="https://giveusashout.org",
            hours="24/7",
        ),
        _line(
            "988 Suicide & Crisis Lifeline",
            "US",
            "en es",
            phone="988",
            sms="Text 988",
            url="https://988lifeline.org",
            hours="24/7",
        ),
        _line(
            "Crisis Text Line",
            "US",
            "en es",
            sms="Text HOME to 741741",
            url="https://www.crisistextline.org",
            hours="24/7",
        ),
        _line(
            "9-8-8 Suicide Crisis Helpline",
            "CA",
            "en fr",
            phone="988",
            sms="Text 988",
            url="https://988.ca",
            hours="24/7",
        ),
        _line(
            "Lifeline",
            "AU",
            "en",
            phone="13 11 14",
            url="https://www.lifeline.org.au",
            hours="24/7",
        ),
        _line(
            "Need to talk? 1737",
            "NZ",
            "en",
            phone="1737",
            sms="Text 1737",
            url="https://1737.org.nz",
            hours="24/7",
        ),
        _line("Pieta", "IE", "en", phone="1800 247 247", url="https://www.pieta.ie", hours="24/7"),
        _line(
            "TelefonSeelsorge",
            "DE",
            "de",
            phone="0800 111 0 111",
            url="https://www.telefonseelsorge.de",
            hours="24/7",
        ),
        _line(
            "TelefonSeelsorge",
            "AT",
            "de",
            phone="142",
            url="https://www.telefonseelsorge.at",
            hours="24/7",
        ),
        _line(
            "Die Dargebotene Hand / La Main Tendue",
            "CH",
            "de fr it",
            phone="143",
            url="https://www.143.ch",
            hours="24/7",
        ),
        _line(
            "3114, numéro national de prévention du suicide",
            "FR",
            "fr",
            phone="3114",
            url="https://3114.fr",
            hours="24/7",
        ),
        _line(
            "Línea 024",
            "ES",
            "es",
            phone="024",
            hours="24/7",
            description="Atención a la conducta suicida.",
        ),
        _line(
            "Telefono Amico Italia",
            "IT",
            "it",
            phone="02 2327 2327",
            url="https://www.telefonoamico.it",
        ),
        _line(
            "113 Zelfmoordpreventie",
            "NL",
            "nl",
            phone="0800 0113",
            url="https://www.113.nl",
            hours="24/7",
        ),
        _line(
            "Zelfmoordlijn 1813",
            "BE",
            "nl",
            phone="1813",
            url="https://www.zelfmoord1813.be",
            hours="24/7",
        ),
        _line(
            "Centre de Prévention du Suicide",
            "BE",
            "fr",
            phone="0800 32 123",
            url="https://www.preventionsuicide.be",
            hours="24/7",
        ),
        _line("Kryzysowy Telefon Zaufania", "PL", "pl", phone="116 123"),
        _line("CVV", "BR", "pt", phone="188", url="https://cvv.org.br", hours="24/7"),
        _line("Línea de la Vida", "MX", "es", phone="800 911 2000", hours="24/7"),
        _line("Tele-MANAS", "IN", "en hi", phone="14416", hours="24/7"),
    ],
}


def load(path: str) -> bytes:
    """The JSON to serve: the operator's file, validated, or the built-in list."""
    if not path:
        data = msgspec.convert(BUILT_IN, Resources)
    else:
        try:
            data = msgspec.json.decode(Path(path).read_bytes(), type=Resources)
        except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ValueError(f"CHATSERVER_RESOURCES_FILE is not usable: {exc}") from None
    return msgspec.json.encode(data)


def route(resources_file: str, exit_url: str) -> Any:
    """The aiohttp handler for GET /resources.json."""
    body = json.loads(load(resources_file))
    body.setdefault("exit_url", exit_url)
    payload = json.dumps(body, ensure_ascii=False).encode()

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=payload, content_type="application/json")

    return handler
