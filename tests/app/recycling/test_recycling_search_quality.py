"""Search quality: everyday queries, as people type them, land in the right category.

Queries include typos, spacing variants, partial words, brand names and English. None of the
typo queries is itself an alias in the data; they work through the search key and trigrams.
"""

from __future__ import annotations

import httpx
from recycling_fixtures import (  # noqa: F401 - fixtures, used by name
    api_fixture,
    recycling_app_fixture,
    seeded_catalog_fixture,
)

# (query, expected category of the best hit)
QUERIES: list[tuple[str, str]] = [
    # brand-like names
    ("삼다수", "clear-pet"),
    ("제주 삼다수", "clear-pet"),
    ("아이시스 8.0", "clear-pet"),
    ("코카콜라 페트병", "clear-pet"),
    ("햇반", "plastic"),
    ("햇반 용기", "plastic"),
    ("신라면 봉지", "vinyl"),
    ("스타벅스 컵", "plastic"),
    ("스타벅스컵", "plastic"),
    ("참이슬", "deposit-bottles"),
    ("박카스", "glass"),
    ("에프킬라", "metal"),
    ("락앤락", "plastic"),
    ("쿠팡박스", "paper"),
    ("야쿠르트", "plastic"),
    ("다이슨 청소기", "e-waste"),
    # spacing variants
    ("신라면봉지", "vinyl"),
    ("택배 박스", "paper"),
    ("피자 박스", "paper"),
    ("우유 팩", "paper-pack"),
    ("깨진유리", "non-combustible"),
    ("보조 배터리", "batteries"),
    ("부탄 가스", "metal"),
    ("과자봉지", "vinyl"),
    # typos and spelling variants
    ("패트병", "clear-pet"),
    ("스치로폼 박스", "styrofoam"),
    ("스티로폴", "styrofoam"),
    ("밧데리", "batteries"),
    ("쇼파", "bulky-waste"),
    ("쥬스팩", "paper-pack"),
    ("뽁복이", "vinyl"),
    ("요쿠르트병", "plastic"),
    ("텔레비젼", "e-waste"),
    ("냉장구", "e-waste"),
    ("형강등", "fluorescent-lamps"),
    ("매트리쓰", "bulky-waste"),
    # partial words
    ("삼다", "clear-pet"),
    ("형광", "fluorescent-lamps"),
    ("스티로", "styrofoam"),
    ("전자레", "e-waste"),
    ("우유", "paper-pack"),
    # plain everyday Korean
    ("소주병", "deposit-bottles"),
    ("맥주캔", "metal"),
    ("참치캔", "metal"),
    ("종이컵", "paper-pack"),
    ("영수증", "general-waste"),
    ("물티슈", "general-waste"),
    ("닭뼈", "general-waste"),
    ("계란 껍질", "general-waste"),
    ("귤껍질", "food-waste"),
    ("바나나 껍질", "food-waste"),
    ("감기약", "medicine"),
    ("헌옷", "clothing"),
    ("핸드폰", "e-waste"),
    ("거울", "non-combustible"),
    # a whole stream by its common name
    ("플라스틱", "plastic"),
    ("비닐", "vinyl"),
    ("캔", "metal"),
    ("유리", "glass"),
    ("음식물 쓰레기", "food-waste"),
    ("대형 폐기물", "bulky-waste"),
    # English, including typos
    ("milk carton", "paper-pack"),
    ("pizza box", "paper"),
    ("plastic bag", "vinyl"),
    ("bubble wrap", "vinyl"),
    ("wine bottle", "glass"),
    ("fridge", "e-waste"),
    ("coffee grounds", "general-waste"),
    ("batteries", "batteries"),
    ("styrofome box", "styrofoam"),
    ("cardbord box", "paper"),
    ("shampoo botle", "plastic"),
]
REQUIRED_ACCURACY = 0.95


def test_table_has_enough_queries() -> None:
    assert len(QUERIES) >= 40
    assert len({query for query, _ in QUERIES}) == len(QUERIES)


async def test_search_finds_expected_category(api: httpx.AsyncClient) -> None:
    misses = []
    for query, expected in QUERIES:
        response = await api.get("/api/v1/recycling/search", params={"q": query, "limit": 3})
        assert response.status_code == 200, response.text
        hits = response.json()["items"]
        got = hits[0]["category"]["slug"] if hits else None
        if got != expected:
            misses.append((query, expected, [(h["slug"], h["score"]) for h in hits]))
    accuracy = 1 - len(misses) / len(QUERIES)
    assert accuracy >= REQUIRED_ACCURACY, f"accuracy {accuracy:.1%}; misses: {misses}"
