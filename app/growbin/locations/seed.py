"""``growbin seed locations``: the fictional sample drop-off points, loaded once."""

from growbin.core.db import get_databases
from growbin.locations import repository
from growbin.locations.service import SAMPLE_DATASET, import_file

SAMPLE_SOURCE = "sample"


async def seed() -> str:
    async with get_databases().sessionmaker("locations")() as session:
        if await repository.has_source(session, SAMPLE_SOURCE):
            return "sample drop-off points already loaded"
    report = await import_file(SAMPLE_DATASET, source=SAMPLE_SOURCE)
    return f"loaded {report.accepted} sample drop-off points (fictional, for local runs)"
