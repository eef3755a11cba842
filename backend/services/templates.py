"""Script templates: named bash scripts a new task can start from."""
from __future__ import annotations

from typing import Optional

import structlog
from sqlalchemy import select

from backend.extensions import db
from backend.models import Template
from backend.services.errors import Conflict, NotFound
from backend.services.unit_of_work import unit_of_work
from backend.utils.time import utcnow

log = structlog.get_logger()


def get_all_templates() -> list[Template]:
    return list(db.session.scalars(select(Template).order_by(Template.name)))


def get_template_by_id(template_id: int) -> Template:
    template = db.session.get(Template, template_id)
    if template is None:
        raise NotFound("template_not_found", f"Template {template_id} does not exist.")
    return template


def _ensure_name_free(name: str, own_id: Optional[int] = None) -> None:
    other = db.session.scalar(select(Template).where(Template.name == name))
    if other is not None and other.id != own_id:
        raise Conflict("template_exists", f"A template named {name!r} already exists.")


def create_template(*, name: str, script_content: str) -> Template:
    with unit_of_work():
        _ensure_name_free(name)
        template = Template(name=name, script_content=script_content, created_time=utcnow(), updated_time=utcnow())
        db.session.add(template)
        db.session.flush()
        log.info("template_created", template_id=template.id, name=name)
    return template


def update_template(template_id: int, *, name: Optional[str] = None,
                    script_content: Optional[str] = None) -> Template:
    with unit_of_work():
        template = get_template_by_id(template_id)
        if name is not None:
            _ensure_name_free(name, own_id=template_id)
            template.name = name
        if script_content is not None:
            template.script_content = script_content
        template.updated_time = utcnow()
        log.info("template_updated", template_id=template_id)
    return template


def delete_template(template_id: int) -> None:
    """Tasks keep their template_type label: it is a name, not a reference."""
    with unit_of_work():
        db.session.delete(get_template_by_id(template_id))
        log.info("template_deleted", template_id=template_id)
