"""Extension objects, created unbound and attached in create_app()."""
from flask_migrate import Migrate
from flask_sock import Sock
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
sock = Sock()
migrate = Migrate()  # only for `flask db ...`; the server upgrades itself
