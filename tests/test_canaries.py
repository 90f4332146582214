"""Canaries on the shipped bundle: clear violations score high, polite replies low.

These sentences are not in the corpus; they were written for this test.
"""

from __future__ import annotations

import pytest

VIOLATIONS = [
    ("你是不是傻，详情页都看不懂吗", {"abuse", "rude_tone"}),
    ("说了八百遍了还问，你自己没长眼睛？", {"abuse", "rude_tone"}),
    ("加我微信 abc12345 私下转账便宜五十", {"off_platform"}),
    ("这款面霜用一周斑就全没了，比医院还管用", {"exaggeration"}),
    ("给个五星好评截图发我，返您十块红包", {"review_manipulation"}),
    ("把您手机上刚收到的六位数字报给我，我帮您退款", {"privacy"}),
]
POLITE = [
    "亲，已经帮您催促快递了哦，请耐心等待",
    "好的亲，马上为您安排补发，给您带来不便非常抱歉",
    "亲，这个问题需要您提供订单号，我才能帮您查询哦",
    "支持七天无理由退货，商品不影响二次销售即可",
    "如果满意，欢迎您评价哦",
    "抱歉亲，活动价已经是最低了，暂时无法再优惠",
]


@pytest.mark.parametrize("text,any_of", VIOLATIONS)
def test_clear_violations_are_flagged(scorer, text: str, any_of: set[str]) -> None:
    r = scorer.score(text)
    assert any_of & set(r.labels), (r.labels, r.scores)


@pytest.mark.parametrize("text", POLITE)
def test_polite_replies_pass(scorer, text: str) -> None:
    r = scorer.score(text)
    assert r.labels == (), (r.labels, r.scores)
    assert max(r.scores.values()) < 0.5


def test_bundle_metadata_is_complete(scorer) -> None:
    info = scorer.bundle.info
    for key in ("schema_version", "model_version", "labels", "thresholds", "preprocessing", "files",
                "training_data", "versions", "parity_max_abs_diff", "metrics"):
        assert key in info, key
    assert info["parity_max_abs_diff"] <= 1e-4
