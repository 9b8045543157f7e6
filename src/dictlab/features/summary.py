"""Headline numbers of a features report: how many latents are live, and how many of the live ones look
single-purpose by their top contexts (one current token, one label)."""

from typing import Any

from dictlab.features.report import FeatureReport


def feature_summary(report: FeatureReport) -> dict[str, Any]:
    """Counts and shares over the report's latents (shares over the live ones with a full list of top contexts).

    ``one_token`` / ``one_label``: every top context has the same current token / label; ``token_80`` /
    ``label_80``: at least 80 % of them do. Latents with fewer firing rows than the requested top count are left
    out of the shares (their lists are short by construction).
    """
    live = [latent for latent in report.latents if not latent.dead]
    full = max((len(latent.top) for latent in live), default=0)
    judged = [latent for latent in live if len(latent.top) == full and full > 0]
    labelled = [latent for latent in judged if latent.top_label_share is not None]

    def share(items: list, test: Any) -> float | None:
        return sum(1 for item in items if test(item)) / len(items) if items else None

    return {
        "latents": len(report.latents),
        "live": len(live),
        "dead": len(report.latents) - len(live),
        "top_contexts": full,
        "judged": len(judged),
        "one_token": share(judged, lambda latent: latent.top_token_share == 1.0),
        "token_80": share(judged, lambda latent: latent.top_token_share >= 0.8),
        "one_label": share(labelled, lambda latent: latent.top_label_share == 1.0),
        "label_80": share(labelled, lambda latent: latent.top_label_share >= 0.8),
        "one_token_or_label": share(
            labelled or judged,
            lambda latent: latent.top_token_share == 1.0 or (latent.top_label_share or 0.0) == 1.0,
        ),
        "flagged": {
            flag: sum(1 for latent in report.latents if latent.diagnosis and flag in latent.diagnosis.flags)
            for flag in sorted({f for latent in report.latents if latent.diagnosis for f in latent.diagnosis.flags})
        },
    }
