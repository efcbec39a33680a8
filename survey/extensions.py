"""Flask extensions, created unbound and initialised in :func:`survey.create_app`."""

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from survey.models import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()
babel = Babel()

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.session_protection = "strong"

# Keys are the client address; behind a proxy it is trusted only as far as TRUSTED_PROXIES says
# (ProxyFix in create_app), so a forged X-Forwarded-For cannot dodge a limit.
limiter = Limiter(key_func=get_remote_address)
