"""The `lede` command line."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from lede.indexer.directory import (
    Index,
    create_index,
    index_manifest,
    open_index,
    repair_index,
)
from lede.indexer.errors import LedeError
from lede.indexer.filters import Filters
from lede.indexer.ingest import WriteReport
from lede.indexer.manifest import IndexSettings
from lede.indexer.models import Article
from lede.indexer.progress import IndexProgress
from lede.indexer.runtime import configure
from lede.indexer.sources import Skipped, count_records, read_source
from lede.service import remote
from lede.service.cli_help import PlainHelpCommand
from lede.service.engine import MODES, Mode, SearchEngine, describe_modes

app = typer.Typer(
    name="lede",
    help="Hybrid semantic search and extractive answers over articles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # Click's plain help: `--quiet`, not `--quiet <bool>`
)

EXIT_SKIPPED = 1
EXIT_ERROR = 2

IndexOption = Annotated[Path, typer.Option("--index", help="Index directory.")]
QueryIndexOption = Annotated[
    Path | None, typer.Option("--index", help="Index directory (or use --server).")
]
ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="LEDE_SERVER",
        metavar="URL",
        help="Ask a running `lede serve` (e.g. http://127.0.0.1:8000) instead of opening the "
        "index here: no model load per command. Also read from LEDE_SERVER.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
SourceOption = Annotated[list[str] | None, typer.Option(help="Only this source (repeatable).")]
AuthorOption = Annotated[list[str] | None, typer.Option(help="Only this author (repeatable).")]
TagOption = Annotated[list[str] | None, typer.Option(help="Only articles with this tag.")]
ArticleOption = Annotated[list[str] | None, typer.Option(help="Only this article id.")]
SinceOption = Annotated[str | None, typer.Option(help="Published on or after (ISO 8601).")]
UntilOption = Annotated[str | None, typer.Option(help="Published on or before (ISO 8601).")]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(EXIT_ERROR)


def _dump(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=None))


@app.callback()
def _setup(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress.")] = False,
) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from lede.service.settings import RuntimeSettings

    try:
        runtime = RuntimeSettings().runtime()
    except ValidationError as error:
        raise _fail(f"invalid setting: {_setting_problems(error)}") from None
    configure(runtime)
    if runtime.threads is not None:  # PyTorch's threads, here and in the processes it starts
        os.environ.setdefault("OMP_NUM_THREADS", str(runtime.threads))


def _setting_problems(error: ValidationError) -> str:
    """The settings' problems, each named by its variable (values are never echoed: keys are
    secrets)."""
    return "; ".join(
        f"LEDE_{'_'.join(str(part) for part in item['loc']).upper()}: {item['msg']}"
        for item in error.errors()
    )


@app.command("index", cls=PlainHelpCommand)
def index_command(
    sources: Annotated[
        list[Path],
        typer.Argument(
            metavar="SOURCE...",
            help="JSONL/CSV files, .txt/.md/.html files, or directories of them.",
        ),
    ],
    index: IndexOption,
    model: Annotated[
        str | None, typer.Option(help="sentence-transformers model name or path.")
    ] = None,
    factory: Annotated[
        str,
        typer.Option(
            help="FAISS factory for a new index: 'auto' (Flat, then IVF tiers by size) "
            "or any factory string (e.g. Flat, HNSW32)."
        ),
    ] = "auto",
    batch_size: Annotated[int, typer.Option(min=1, help="Articles per transaction.")] = 512,
    device: Annotated[
        str,
        typer.Option(help="Where to embed: cpu (ONNX Runtime), cuda, or auto (a GPU if any)."),
    ] = "auto",
    embed_batch_size: Annotated[int, typer.Option(min=1, help="Texts per embedding batch.")] = 64,
    shards: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=256,
            help="Create a sharded index of this many shards (articles hashed by id); an "
            "existing index keeps its layout.",
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray",
            help="Chunk and embed on this Ray cluster (an address as Ray takes it, or 'local'); "
            "needs a sharded index (--shards N).",
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=1024, help="With --ray: embedding actors.")
    ] = 2,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar (none is drawn off a terminal).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Add new articles, update changed ones and skip unchanged ones.

    On a terminal a progress bar shows articles (with their rate and ETA) and chunks per
    second.
    """
    skipped: list[Skipped] = []
    seen: dict[str, str] = {}

    def articles() -> Iterator[Article]:
        for source in sources:
            for item in read_source(source):
                if isinstance(item, Skipped):
                    skipped.append(item)
                    continue
                if item.id in seen:
                    skipped.append(
                        Skipped(
                            str(source),
                            None,
                            f"duplicate id {item.id!r} (first in {seen[item.id]})",
                        )
                    )
                    continue
                seen[item.id] = str(source)
                yield item

    try:
        for source in sources:
            if not source.exists():
                raise _fail(f"source {source} does not exist")
        if device not in ("cpu", "cuda", "auto"):
            raise _fail(f"--device must be cpu, cuda or auto; got {device!r}")
        show = sys.stderr.isatty() and not quiet
        total = sum(count_records(source) for source in sources) if show else None
        lede = create_index(
            index,
            shards=shards,
            model=model,
            settings=IndexSettings(faiss_factory=factory),
            device=device,
            embed_batch_size=embed_batch_size,
        )
        if ray_address is not None:
            report = _index_on_ray(lede, articles(), ray_address, workers, device, batch_size)
        else:
            bar = IndexProgress(total, show=show)
            try:
                with lede:
                    report = lede.add(articles(), batch_size=batch_size, progress=bar)
            finally:
                bar.close()
    except LedeError as error:
        raise _fail(str(error)) from None
    except ValueError as error:
        raise _fail(str(error)) from None
    report.skipped = [s.to_json() for s in skipped]
    _print_report(report, as_json)
    if skipped:
        raise typer.Exit(EXIT_SKIPPED)


def _index_on_ray(
    lede: Index,
    articles: Iterator[Article],
    address: str,
    workers: int,
    device: str,
    batch_size: int,
) -> WriteReport:
    """`lede index --ray`: the chunk and embed stages on the cluster (indexer/cluster/ingest.py)."""
    from lede.indexer.shards.sharded import ShardedIndex

    with lede:
        if not isinstance(lede, ShardedIndex):
            raise _fail("--ray indexes into a sharded index: give --shards N for a new one")
        try:
            from lede.indexer.cluster.ingest import index_on_ray
            from lede.service.ray_serve import connect
        except ImportError:
            raise _fail("--ray needs Ray: pip install 'lede[ray]'") from None
        connect(address)
        return index_on_ray(lede, articles, workers=workers, device=device, batch_size=batch_size)


def _print_report(report: WriteReport, as_json: bool) -> None:
    if as_json:
        _dump({**report.counts(), "skipped": report.skipped})
        return
    typer.echo(
        f"added {report.added}, updated {report.updated}, unchanged {report.unchanged}, "
        f"chunks {report.chunks}, skipped {len(report.skipped)}"
    )
    for item in report.skipped:
        where = item["source"] + (f":{item['line']}" if item["line"] else "")
        typer.echo(f"skipped {where}: {item['reason']}", err=True)


@app.command("delete", cls=PlainHelpCommand)
def delete_command(
    article_ids: Annotated[list[str], typer.Argument(help="Article ids to delete.")],
    index: IndexOption,
    as_json: JsonOption = False,
) -> None:
    """Delete articles from the index (database and every view).

    Exits 1 when an id is not in the index (as HTTP answers 404), after deleting the others.
    """
    try:
        with open_index(index) as lede:
            found = lede.delete(article_ids)
        missing = sorted(set(article_ids) - set(found))
        deleted = len(found)
    except LedeError as error:
        raise _fail(str(error)) from None
    if as_json:
        _dump({"deleted": deleted, "missing": missing})
    else:
        typer.echo(f"deleted {deleted}")
    if missing:
        typer.echo(f"not found: {', '.join(missing)}", err=True)
        raise typer.Exit(EXIT_SKIPPED)


def _filters(
    source: list[str] | None,
    author: list[str] | None,
    tag: list[str] | None,
    article: list[str] | None,
    since: str | None,
    until: str | None,
) -> Filters:
    try:
        return Filters.from_values(
            sources=source,
            authors=author,
            tags=tag,
            article_ids=article,
            since=since,
            until=until,
            names=("--since", "--until"),
        )
    except ValueError as error:
        raise _fail(str(error)) from None


@app.command("search", cls=PlainHelpCommand)
def search_command(
    query: Annotated[str, typer.Argument(help="What to search for.")],
    index: QueryIndexOption = None,
    mode: Annotated[str, typer.Option(help=describe_modes())] = "hybrid",
    k: Annotated[int, typer.Option("-k", "--k", min=1, max=1000, help="Hits to return.")] = 10,
    source: SourceOption = None,
    author: AuthorOption = None,
    tag: TagOption = None,
    article: ArticleOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Search the index and print ranked passages."""
    checked_mode = _mode(mode)
    filters = _filters(source, author, tag, article, since, until)
    try:
        if server is not None:
            result = remote.search(server, query, checked_mode, k, filters)
        else:
            with open_index(_local(index)) as lede:
                engine = SearchEngine(lede)
                result = engine.search(query, mode=checked_mode, k=k, filters=filters).to_json()
    except (LedeError, ValueError) as error:
        raise _fail(str(error)) from None
    if as_json:
        _dump(result)
    else:
        _print_hits(result)


def _local(index: Path | None) -> Path:
    if index is None:
        raise _fail("give --index DIR, or --server URL (or LEDE_SERVER) for a running lede serve")
    return index


def _mode(value: str) -> Mode:
    for mode in MODES:
        if mode == value:
            return mode
    raise _fail(f"--mode must be one of {', '.join(MODES)}; got {value!r}")


def _print_hits(result: dict[str, Any]) -> None:
    if not result["hits"]:
        typer.echo("no results")
    for rank, hit in enumerate(result["hits"], start=1):
        date = (hit["published_at"] or "")[:10]
        typer.echo(f"{rank}. {hit['title']} [{hit['article_id']}] {date} score={hit['score']:.4f}")
        snippet = " ".join(hit["text"].split())
        typer.echo(f"   {snippet[:240]}{'…' if len(snippet) > 240 else ''}")
    typer.echo(f"({result['took_ms']:.1f} ms)")


@app.command("ask", cls=PlainHelpCommand)
def ask_command(
    question: Annotated[str, typer.Argument(help="The question.")],
    index: QueryIndexOption = None,
    mode: Annotated[str, typer.Option(help=describe_modes())] = "hybrid",
    source: SourceOption = None,
    author: AuthorOption = None,
    tag: TagOption = None,
    article: ArticleOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    threshold: Annotated[
        float | None, typer.Option(min=0, max=1, help="Abstain below this confidence.")
    ] = None,
    reader: Annotated[
        str | None, typer.Option(help="Span-extraction (SQuAD-style) model name or path.")
    ] = None,
    server: ServerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Answer a question with citations, or say that no confident answer was found."""
    from lede.service.answers.answerer import Answerer
    from lede.service.models_optional import SpanReader

    filters = _filters(source, author, tag, article, since, until)
    checked_mode = _mode(mode)
    if server is not None and reader is not None:
        raise _fail("--reader works on a local --index only (the server has its own settings)")
    try:
        if server is not None:
            answer = remote.ask(server, question, checked_mode, filters, threshold)
        else:
            with open_index(_local(index)) as lede:
                answerer = Answerer(
                    SearchEngine(lede), reader=SpanReader(reader) if reader else None
                )
                answer = answerer.ask(
                    question, mode=checked_mode, filters=filters, threshold=threshold
                ).to_json()
    except (LedeError, ValueError) as error:
        raise _fail(str(error)) from None
    if as_json:
        _dump(answer)
    else:
        typer.echo(answer["markdown"])
        typer.echo(f"\n(confidence {answer['confidence']:.2f}, {answer['took_ms']:.0f} ms)")


@app.command("mcp", cls=PlainHelpCommand)
def mcp_command(index: IndexOption) -> None:
    """Serve the MCP tools (search, answer, get_article) over stdio for an LLM agent."""
    from lede.service.answers.answerer import Answerer
    from lede.service.http.mcp_tools import build_mcp_server

    try:
        lede = open_index(index)
    except LedeError as error:
        raise _fail(str(error)) from None
    with lede:
        answerer = Answerer(SearchEngine(lede))
        answerer.warm_up()
        build_mcp_server(answerer).run("stdio")


@app.command("serve", cls=PlainHelpCommand)
def serve_command(
    index: IndexOption,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray",
            help="Serve a sharded index on this Ray cluster (an address as Ray takes it, or "
            "'local' to start Ray here): one actor per shard, the API as Ray Serve replicas.",
        ),
    ] = None,
    replicas: Annotated[
        int, typer.Option(min=1, max=64, help="With --ray: API replicas (stateless).")
    ] = 1,
) -> None:
    """Serve the index over HTTP (uvicorn, or Ray Serve with --ray). Other settings come
    from LEDE_* variables."""
    import uvicorn

    try:
        index_manifest(index)
    except LedeError as error:
        raise _fail(str(error)) from None
    os.environ["LEDE_INDEX"] = str(index.resolve())
    try:
        from lede.service.settings import Settings

        Settings()  # type: ignore[call-arg]
    except ValidationError as error:
        raise _fail(f"invalid setting: {_setting_problems(error)}") from None
    _check_port(host, port)
    if ray_address is not None:
        _serve_on_ray(index, ray_address, replicas, host, port)
        return
    url = f"http://{host}:{port}"
    typer.echo(
        f"serving {index} on {url}\n  search page  {url}/\n  API docs     {url}/docs\n"
        f"  try          curl '{url}/search?query=rome&k=3'",
        err=True,
    )
    uvicorn.run(
        "lede.service.http.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )


def _serve_on_ray(index: Path, address: str, replicas: int, host: str, port: int) -> None:
    """`lede serve --ray`: place the shard actors, serve the replicas, wait for Ctrl-C."""
    import time

    from lede.indexer.shards.layout import is_sharded

    if not is_sharded(index):
        raise _fail(
            f"--ray serves a sharded index; {index} is one index. Create a sharded one with: "
            f"lede index SOURCE --index DIR --shards N"
        )
    try:
        from lede.service.ray_serve import connect, serve_on_ray
        from lede.service.settings import Settings
    except ImportError:
        raise _fail("--ray needs Ray: pip install 'lede[ray]'") from None
    connect(address, serving=True)
    served = serve_on_ray(Settings(), replicas=replicas, host=host, port=port)  # type: ignore[call-arg]
    typer.echo(
        f"serving {index} on {served.url} through Ray Serve ({replicas} replicas, "
        f"{len(served.cluster.shard_actors)} shard actors); Ctrl-C stops",
        err=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        served.stop()


def _check_port(host: str, port: int) -> None:
    """Fail before loading anything when the address is taken (uvicorn would say Errno 98)."""
    import errno
    import socket

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, port))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise _fail(
                f"port {port} on {host} is already in use (another `lede serve`?); stop it or "
                "choose another with --port"
            ) from None
        raise _fail(f"cannot listen on {host}:{port}: {error.strerror}") from None


@app.command("info", cls=PlainHelpCommand)
def info_command(index: IndexOption, as_json: JsonOption = False) -> None:
    """Show the manifest, counts and file sizes of an index."""
    try:
        with open_index(index) as lede:
            info = lede.info()
    except LedeError as error:
        raise _fail(str(error)) from None
    if as_json:
        _dump(info)
        return
    model = info["manifest"]["model"]
    typer.echo(f"index     {info['path']}")
    typer.echo(f"model     {model['name']} ({model['dimension']}-d, rev {model['revision']})")
    typer.echo(f"articles  {info['counts']['articles']}")
    typer.echo(f"chunks    {info['counts']['chunks']}")
    typer.echo(
        f"faiss     {info['manifest']['dense']['factory']}, "
        f"{info['views']['dense_vectors']} vectors"
    )
    typer.echo(f"bm25      {info['views']['bm25_terms']} terms")
    if "layout" in info:
        sizes = ", ".join(str(shard["counts"]["chunks"]) for shard in info["shards"])
        typer.echo(f"shards    {info['layout']['shards']} (chunks: {sizes})")
    typer.echo(f"size      {info['total_bytes'] / 1e6:.1f} MB")


@app.command("repair", cls=PlainHelpCommand)
def repair_command(index: IndexOption) -> None:
    """Rebuild every view (BM25, FAISS) from the SQLite source of truth."""
    try:
        counts = repair_index(index)
    except LedeError as error:
        raise _fail(str(error)) from None
    typer.echo(f"repaired {index}: {counts['articles']} articles, {counts['chunks']} chunks")


PLUGINS = "lede.commands"  # entry points: `register(app)` adds commands (eval's, for one)


def main() -> None:
    """The `lede` command: the product's commands plus those its installed plugins add."""
    from importlib.metadata import entry_points

    for plugin in entry_points(group=PLUGINS):
        plugin.load()(app)
    app()
