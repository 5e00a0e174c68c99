from growbin.core.migrations import run_env
from growbin.scans.models import Base

run_env(Base.metadata)
