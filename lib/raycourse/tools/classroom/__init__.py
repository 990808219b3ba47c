"""The class grader: find learners' notebooks (:mod:`.prepare`), run them (:mod:`.run`), report (:mod:`.report`)."""
