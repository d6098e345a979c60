"""``field__any_of=[...]``: membership in a large list of plain values.

On PostgreSQL it is ``field = ANY(%s)`` with the whole list as one array
parameter, so matching 10,000 usernames costs one parameter instead of 10,000
placeholders to build, quote and parse. Elsewhere it is the ordinary ``IN``."""

from django.db.models import Field, ForeignObject
from django.db.models.lookups import In


class AnyOf(In):
    lookup_name = "any_of"

    def get_prep_lookup(self):
        if self.rhs_is_direct_value():
            # Plain values only (strings, numbers, UUIDs): no per-item expression resolving.
            self.rhs = list(dict.fromkeys(v for v in self.rhs if v is not None))
            return self.rhs
        return super().get_prep_lookup()

    def as_postgresql(self, compiler, connection):
        if not self.rhs_is_direct_value():
            return super().as_sql(compiler, connection)
        lhs, lhs_params = self.process_lhs(compiler, connection)
        db_type = self.lhs.output_field.db_type(connection) or "text"
        # Foreign keys compare as their target's column type.
        if self.lhs.output_field.is_relation:
            db_type = self.lhs.output_field.target_field.rel_db_type(connection)
        return f"{lhs} = ANY(%s::{db_type}[])", (*lhs_params, self.rhs)


Field.register_lookup(AnyOf)
# Relations keep their own list of lookups (user_id__any_of goes through the foreign key).
ForeignObject.register_lookup(AnyOf)
