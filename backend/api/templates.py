"""Template routes: list, add, edit, delete."""
from __future__ import annotations

from typing import Optional

from flask import jsonify
from flask_openapi3 import APIBlueprint, Tag

from backend.api.responses import TemplateList, TemplateOut, answers, to_json
from backend.api.schemas import Body, Name, NonBlank, TemplatePath
from backend.services import templates as template_service

bp = APIBlueprint("templates", __name__, url_prefix="/api", abp_tags=[Tag(name="templates")])


class TemplateCreate(Body):
    name: Name
    script_content: NonBlank


class TemplateUpdate(Body):
    name: Optional[Name] = None
    script_content: Optional[NonBlank] = None


@bp.get("/templates", responses=answers({200: TemplateList}))
def list_templates():
    return jsonify(to_json(TemplateList, [t.to_dict() for t in template_service.get_all_templates()]))


@bp.post("/templates", responses=answers({201: TemplateOut}, 409))
def create_template(body: TemplateCreate):
    """Add a named bash script; a duplicate name answers 409."""
    return jsonify(to_json(TemplateOut, template_service.create_template(**body.model_dump()).to_dict())), 201


@bp.get("/templates/<int:template_id>", responses=answers({200: TemplateOut}, 404))
def get_template(path: TemplatePath):
    return jsonify(to_json(TemplateOut, template_service.get_template_by_id(path.template_id).to_dict()))


@bp.put("/templates/<int:template_id>", responses=answers({200: TemplateOut}, 404, 409))
def update_template(path: TemplatePath, body: TemplateUpdate):
    """Rename a template or change its script (tasks made from it keep their copy)."""
    template = template_service.update_template(path.template_id, **body.model_dump())
    return jsonify(to_json(TemplateOut, template.to_dict()))


@bp.delete("/templates/<int:template_id>", responses=answers({204: None}, 404))
def delete_template(path: TemplatePath):
    template_service.delete_template(path.template_id)
    return "", 204
