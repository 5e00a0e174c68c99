from growbin.core.migrations import run_env
from growbin.users.models import Base

run_env(Base.metadata)
