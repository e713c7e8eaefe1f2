"""What a run's or a batch's results look like to a reader: the report, its plots, the model card, runs side by
side and the batch report. It reads measurements (evaluation/), it measures nothing."""
