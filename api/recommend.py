"""One recommendation request end to end, behind the route: the experiment's model, the user's
online views (one HMGET), the hybrid decision, metrics, the exposure and the shadow sample."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from api import experimentation
from api.deps import rules_for
from api.runtime import Runtime
from api.schemas import Filters
from recommender.errors import FeatureStoreUnavailable
from recommender.serving import hybrid
from recommender.serving.paths import Ranked


@dataclass(frozen=True)
class Answer:
    ranked: Ranked
    ages: dict[str, float]
    titles: dict[str, str]
    lineage: dict[str, str | None]


async def recommend(
    rt: Runtime,
    user_id: str | None,
    k: int,
    filters: Filters,
    recent: tuple[str, ...] = (),
    profile: dict[str, object] | None = None,
) -> Answer:
    production, online = rt.require_served()
    a = experimentation.assign(rt, production, user_id)
    bundle, catalog = a.served.bundle, a.served.catalog
    rules = rules_for(filters, bundle.items, catalog)
    req = hybrid.Request(user_id, k, rules, recent, profile, filters.explain)
    # a request with items of its own will most likely ask for a two-stage ranking: the
    # batcher may hold a block a moment for it while its store read is on the way
    with rt.batcher.expecting(bool(recent) and a.served.ranking is not None):
        ctx: hybrid.Context | None = hybrid.Context()
        down = ""
        if user_id is not None:
            try:
                ctx = hybrid.Context.from_views(await online.user_views(user_id), rt.live)
            except FeatureStoreUnavailable as exc:
                ctx, down = None, str(exc)
        now = datetime.now(timezone.utc)
        t0 = time.perf_counter()
        steps = hybrid.recommend_steps(
            bundle,
            catalog,
            req,
            ctx.without_list() if ctx is not None and a.skip_list else ctx,
            now,
            timedelta(seconds=rt.settings.api.list_ttl_seconds),
            unavailable_reason=down or "online store unavailable",
            ranking_items=a.served.ranking,
            diversity=rt.settings.api.diversity,
        )
        ranked, ages = await rt.batcher.run(steps)  # ranked in a block with concurrent ones
    if a.skip_list and ranked.source == "realtime":
        ranked.reason = f"experiment {a.experiment}, variant {a.variant}: ranked in real time"
    rt.metrics.record_served(ranked, ages, time.perf_counter() - t0, store_down=bool(down))
    rid = uuid.uuid4().hex
    experimentation.record_exposure(rt, rid, now, user_id, a, ranked)
    experimentation.submit_shadow(rt, req, filters, ctx, now, ranked, rid)
    lineage = {"recommendation_id": rid, "experiment": a.experiment, "variant": a.variant}
    return Answer(ranked, ages, a.served.titles, lineage)
