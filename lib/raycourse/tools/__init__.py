"""What no lesson imports: tools for maintainers (build, pins, procs) and instructors (workshop, classroom)."""
