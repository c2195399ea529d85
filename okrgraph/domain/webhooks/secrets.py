"""Webhook signing secrets at rest: sealed under the operator's key, never stored plain.

A database dump alone cannot sign events: each endpoint's `whsec_` secret is
stored as `v1.<key id>.<base64url(nonce | AES-256-GCM ciphertext)>`, bound to its
endpoint (the organisation and endpoint ids are the associated data, so a sealed
secret copied to another row does not open). The keys come from the setting
`OKR_SECRET_KEYS`: one or more base64url-encoded 32-byte keys separated by
commas, newest first. New secrets are sealed under the first; every listed key
still opens what it sealed, so a key is rotated by putting a new one in front,
running `okr webhooks reseal`, and then dropping the old one. A key's id is
derived from the key itself (no names to keep in step).

Losing every key that sealed a secret loses that secret: the endpoint needs
`rotateWebhookSecret`. `open_secret` is the one way back to the plaintext (the
delivery job signs with it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import uuid
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from okrgraph.domain.config import Settings, settings

KEY_BYTES = 32
NONCE_BYTES = 12
VERSION = "v1"
SETTING = "OKR_SECRET_KEYS"


class SecretKeyMissing(RuntimeError):
    """No usable key is configured (or a configured one is malformed)."""


class SecretUnreadable(Exception):
    """A sealed secret that none of the configured keys opens."""


def new_key() -> str:
    """A fresh key for `OKR_SECRET_KEYS` (base64url of 32 random bytes)."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode().rstrip("=")


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"okrgraph webhook secret key\0" + key).hexdigest()[:12]


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _associated(org_id: uuid.UUID, endpoint_id: uuid.UUID) -> bytes:
    return f"webhook_endpoints/{org_id}/{endpoint_id}".encode()


@dataclass(frozen=True)
class Keyring:
    """Keys newest first: the first seals, all open."""

    keys: tuple[tuple[str, bytes], ...]

    @classmethod
    def parse(cls, value: str) -> Keyring:
        keys: list[tuple[str, bytes]] = []
        for n, part in enumerate(p.strip() for p in value.split(",")):
            if not part:
                continue
            try:
                key = _b64decode(part)
            except (binascii.Error, ValueError):
                key = b""
            if len(key) != KEY_BYTES:
                raise SecretKeyMissing(
                    f"{SETTING}: key {n + 1} is not base64url of {KEY_BYTES} bytes "
                    "(make one with `okr secret-key`)"
                )
            keys.append((key_id(key), key))
        if not keys:
            raise SecretKeyMissing(
                f"{SETTING} is not set: webhook secrets are encrypted with it; "
                "make a key with `okr secret-key` and keep it safe"
            )
        return cls(tuple(keys))

    @property
    def current_id(self) -> str:
        return self.keys[0][0]

    def seal(self, secret: str, org_id: uuid.UUID, endpoint_id: uuid.UUID) -> str:
        kid, key = self.keys[0]
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, secret.encode(), _associated(org_id, endpoint_id))
        data = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{VERSION}.{kid}.{data}"

    def open(self, sealed: str, org_id: uuid.UUID, endpoint_id: uuid.UUID) -> str:
        version, _, rest = sealed.partition(".")
        kid, _, data = rest.partition(".")
        if version != VERSION or not data:
            raise SecretUnreadable(f"endpoint {endpoint_id}: not a sealed secret")
        key = dict(self.keys).get(kid)
        if key is None:
            raise SecretUnreadable(
                f"endpoint {endpoint_id}: sealed under key {kid}, which is not in {SETTING} "
                "(restore that key, or rotate the endpoint's secret)"
            )
        try:
            raw = _b64decode(data)
            plain = AESGCM(key).decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], _associated(org_id, endpoint_id)
            )
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise SecretUnreadable(
                f"endpoint {endpoint_id}: its sealed secret does not open under key {kid} "
                "(altered, or moved from another endpoint)"
            ) from exc
        return plain.decode()

    def is_current(self, sealed: str) -> bool:
        return sealed.startswith(f"{VERSION}.{self.current_id}.")


def keyring(cfg: Settings = settings) -> Keyring:
    """The configured keys; `SecretKeyMissing` says what is wrong with the setting."""
    return Keyring.parse(cfg.secret_keys or "")
