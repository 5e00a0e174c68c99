from growbin.core.migrations import run_env
from growbin.recycling.models import Base

run_env(Base.metadata)
