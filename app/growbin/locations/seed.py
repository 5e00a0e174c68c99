from growbin.locations.service import SAMPLE_DATASET, import_file


async def seed() -> str:
    report = await import_file(SAMPLE_DATASET, source="sample")
    return f"{report.accepted} sample drop-off points (fictional, for local runs)"
