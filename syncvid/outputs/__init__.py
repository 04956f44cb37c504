"""What a run leaves on disk: the output layout, the manifest, completion markers, the report."""
