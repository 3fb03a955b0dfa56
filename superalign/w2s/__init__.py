"""Weak-to-strong generalization and gap annealing. Modules, bottom to top: `config` (pydantic section, light),
`tasks`, `losses`, `metrics`, `features`, `probe`, `finetune`, `experiment`, `report`; nothing here is imported
eagerly, so `superalign.w2s.config` stays cheap to import."""
