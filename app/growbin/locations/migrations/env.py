from growbin.core.migrations import run_env
from growbin.locations.models import Base

run_env(Base.metadata)
