"""The one boundary where Kusto SDK and Azure errors become the sink's own.

Every call to Kusto or Azure Storage runs inside :func:`kusto_errors`: throttling and
outages come out transient, refusals terminal, and no SAS token survives in a message.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from azure.core.exceptions import AzureError
from azure.kusto.data.exceptions import (
    KustoApiError,
    KustoBlobError,
    KustoError,
    KustoNetworkError,
    KustoServiceError,
    KustoThrottlingError,
)
from azure.kusto.ingest.exceptions import KustoQueueError

from pipelines.errors import IngestionFailed, KustoThrottled, KustoUnavailable, SinkError


@contextlib.contextmanager
def kusto_errors(what: str) -> Iterator[None]:
    """Translate Kusto SDK and Azure errors into the sink's own, at one boundary."""
    try:
        yield
    except SinkError:
        raise
    except KustoThrottlingError as e:
        raise KustoThrottled(f"{what}: Kusto is throttling requests ({e})") from e
    except KustoApiError as e:
        api_error = e.get_api_error()
        if api_error.permanent:
            raise IngestionFailed(
                f"{what}: {api_error.description}", permanent=True, error_code=api_error.code
            ) from e
        raise KustoUnavailable(f"{what}: {api_error.description}") from e
    except KustoNetworkError as e:
        # The SDK's text is the same for a refused connection and an untrusted certificate:
        # the innermost cause tells them apart.
        text, cause = _without_sas(e)
        root = _chain(e)[-1]
        reason, _ = _without_sas(root)
        raise KustoUnavailable(f"{what}: {text} ({type(root).__name__}: {reason})") from cause
    except (KustoServiceError, AzureError, OSError) as e:
        text, cause = _without_sas(e)
        raise KustoUnavailable(f"{what}: {text}") from cause
    except KustoBlobError as e:
        # The SDK wraps every failed blob upload (storage unreachable, 5xx) into this.
        text, cause = _without_sas(e.inner, e)
        raise KustoUnavailable(f"{what}: uploading to Azure Storage failed: {text}") from cause
    except KustoQueueError as e:
        text, cause = _without_sas(e)
        raise KustoUnavailable(f"{what}: queueing in Azure Storage failed: {text}") from cause
    except KustoError as e:
        text, cause = _without_sas(e)
        raise IngestionFailed(f"{what}: {text}", permanent=True) from cause


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and its causes, outermost first."""
    chain = [error]
    while (inner := error.__cause__ or error.__context__) is not None and inner not in chain:
        chain.append(inner)
        error = inner
    return chain


# A storage URL's query string is its SAS token: a credential.
_URL_QUERY = re.compile(r"(https?://[^\s?'\"]+)\?[^\s'\"]*")


def _without_sas(
    error: BaseException, chained: BaseException | None = None
) -> tuple[str, BaseException | None]:
    """``error``'s text with URL query strings (SAS tokens) cut out, and the exception to
    chain: none when any text in its chain holds one, since a chained cause reaches logs too."""
    text = str(error)
    clean = _URL_QUERY.sub(r"\1?<redacted>", text)
    chain = _chain(chained or error)
    secret = any(_URL_QUERY.search(str(cause)) for cause in [*chain, *_chain(error)])
    return clean, None if secret else chain[0]
