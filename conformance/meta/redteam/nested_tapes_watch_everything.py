"""watch_accessed_variables=False is honoured by an outermost tape only: a tape opened inside
another watches every Variable it reads."""
from conformance.meta.planted._base import PlantedAdapter, TapeWrapper


class Adapter(PlantedAdapter):
    bug = "watch_accessed_variables=False ignored on nested tapes"
    depth = 0

    def tape(self, persistent=False, watch_accessed_variables=True):
        adapter = self
        nested = adapter.depth > 0

        class Counting(TapeWrapper):
            def __enter__(self):
                adapter.depth += 1
                return super().__enter__()

            def __exit__(self, *exc_info):
                adapter.depth -= 1
                return super().__exit__(*exc_info)

        return Counting(self.base.tape(persistent=persistent, watch_accessed_variables=watch_accessed_variables or nested))
