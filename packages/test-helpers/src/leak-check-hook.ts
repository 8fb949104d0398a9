/**
 * Loaded with `--import` in every test process (scripts/test.sh): fails the test file if it leaves
 * behind what the leak check can attribute to it (see leaks.ts).
 */
import { checkLeaksAfterFile } from './leak-check.js';

checkLeaksAfterFile();
