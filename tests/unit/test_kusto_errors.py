"""Kusto and Azure errors become the sink's own at one boundary, without SAS tokens."""

from __future__ import annotations

import ssl

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.kusto.data.exceptions import KustoNetworkError
from requests.exceptions import ConnectionError as RequestsConnectionError

from pipelines.errors import KustoUnavailable
from pipelines.kusto_errors import kusto_errors

SAS_URL = "http://127.0.0.1:10000/devstoreaccount1/tmp/b.gz?sv=2021-08-06&sig=S3cr3tSig%3D"


def test_storage_errors_are_transient_and_carry_no_sas_token() -> None:
    with pytest.raises(KustoUnavailable) as raised:
        with kusto_errors("ingesting batch t/0/0-9"):
            raise ServiceRequestError(f"Connection refused: {SAS_URL}")
    error = raised.value
    assert error.transient
    assert "S3cr3tSig" not in str(error) and "sig=" not in str(error)
    assert "devstoreaccount1/tmp/b.gz?<redacted>" in str(error)
    assert error.__cause__ is None, "a chained cause would print the token in tracebacks"


def test_errors_without_urls_keep_their_cause() -> None:
    with pytest.raises(KustoUnavailable) as raised:
        with kusto_errors("listing extents"):
            raise ConnectionResetError("reset by peer")
    assert isinstance(raised.value.__cause__, ConnectionResetError)


@pytest.mark.parametrize(
    ("inner", "says"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "ConnectionRefusedError"),
        (ssl.SSLCertVerificationError("certificate verify failed"), "certificate verify failed"),
    ],
)
def test_network_errors_say_what_failed_underneath(inner: Exception, says: str) -> None:
    """The SDK says only "Failed to process network request" for both."""
    with pytest.raises(KustoUnavailable) as raised:
        with kusto_errors("reading extents of db.T"):
            try:
                try:
                    raise inner
                except OSError as e:
                    raise RequestsConnectionError(f"max retries exceeded: {SAS_URL}") from e
            except RequestsConnectionError as e:
                raise KustoNetworkError("https://127.0.0.1:8443/v1/rest/mgmt") from e
    text = str(raised.value)
    assert "Failed to process network request" in text and says in text
    assert "S3cr3tSig" not in text
    assert raised.value.__cause__ is None, "a cause deeper down holds a SAS token"
