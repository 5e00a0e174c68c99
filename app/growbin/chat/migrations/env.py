from growbin.chat.models import Base
from growbin.core.migrations import run_env

run_env(Base.metadata)
