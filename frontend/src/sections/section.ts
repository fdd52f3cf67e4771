// What main.ts needs of a section: its title, how many cards its skeleton shows, and how
// to draw an answer at a given width.

import type { SectionData, SectionName } from "../api";

export interface Section<S extends SectionName> {
  name: S;
  title: string;
  cards: number;
  render(data: SectionData[S], width: number): Node[];
}
